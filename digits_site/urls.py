from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.renderers import OpenApiYamlRenderer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


class ReadableYaml(OpenApiYamlRenderer):
    """The schema's YAML as plain text: a browser shows it instead of downloading
    ``application/vnd.oai.openapi``; clients that ask for that (or JSON) still get it."""

    media_type = "text/plain"
    charset = "utf-8"


class SchemaView(SpectacularAPIView):
    renderer_classes = [ReadableYaml, *SpectacularAPIView.renderer_classes]


urlpatterns = [
    path("", include("classifier.urls")),
    path("", include("collector.urls")),
    path("", include("training.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    # Pages that name no icon (the admin's, Swagger's) get the site's, not a 404.
    path("favicon.ico", RedirectView.as_view(url=static("digits/favicon.svg"), permanent=True)),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler400 = "digits_site.errors.bad_request"
handler404 = "digits_site.errors.not_found"
handler500 = "digits_site.errors.server_error"
