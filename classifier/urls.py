from django.urls import path

from classifier import api, views

urlpatterns = [
    path("", views.draw, name="draw"),
    path("api/predict/", api.PredictView.as_view(), name="api-predict"),
    path("api/predict/batch/", api.PredictBatchView.as_view(), name="api-predict-batch"),
    path("api/models/", api.ModelVersionsView.as_view(), name="api-models"),
    path("api/models/<int:version>/promote/", api.PromoteView.as_view(), name="api-model-promote"),
    path("models/v<int:version>/<str:name>", views.model_file, name="model-file"),
]
