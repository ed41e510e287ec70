from django.urls import path

from collector import api, views

urlpatterns = [
    path("contribute/", views.contribute, name="contribute"),
    path("dataset/", views.dataset_page, name="dataset"),
    path("contributions/", views.my_contributions, name="my-contributions"),
    path("contributions/<int:pk>/withdraw/", views.withdraw, name="withdraw-drawing"),
    path("drawings/<str:sha256>.png", views.drawing_image, name="drawing-image"),
    path("api/drawings/", api.DrawingsView.as_view(), name="api-drawings"),
    path("api/dataset/stats/", api.DatasetStatsView.as_view(), name="api-dataset-stats"),
]
