from django.urls import path

from training import api

urlpatterns = [
    path("api/training-runs/", api.TrainingRunsView.as_view(), name="api-training-runs"),
    path("api/training-runs/<int:pk>/", api.TrainingRunView.as_view(), name="api-training-run"),
    path(
        "api/training-runs/<int:pk>/cancel/",
        api.CancelTrainingRunView.as_view(),
        name="api-training-run-cancel",
    ),
    path(
        "api/training-runs/<int:pk>/again/",
        api.RunAgainView.as_view(),
        name="api-training-run-again",
    ),
]
