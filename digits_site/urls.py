from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", include("classifier.urls")),
    path("", include("collector.urls")),
    path("", include("training.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "digits_site.errors.bad_request"
handler404 = "digits_site.errors.not_found"
handler500 = "digits_site.errors.server_error"
