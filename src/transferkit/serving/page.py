"""GET / : a small page to try the model (static HTML, CSS and JS shipped in serving/static; no external resources).

The page reads /metadata and posts to /predict like any client. A strict Content-Security-Policy allows only this
server's own script, style and API: no inline script, no CDN, no frames.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
FILES = {
    "/": ("index.html", "text/html"),
    "/page.js": ("page.js", "text/javascript"),
    "/page.css": ("page.css", "text/css"),
}


DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")


def add_page_routes(app) -> None:
    """Serve the page's three files (read once, at app creation) and the API docs."""
    for route, (filename, media_type) in FILES.items():
        app.add_api_route(route, _responder(filename, media_type), methods=["GET"], include_in_schema=False)
    add_docs_routes(app)


def add_docs_routes(app) -> None:
    """/docs (Swagger UI 5, which reads FastAPI's OpenAPI 3.1) from the files in the fastapi-offline wheel: FastAPI's
    default loads it from a CDN, which an offline machine cannot reach. Create the app with docs_url=None."""
    import mimetypes
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import Response

    static = files("fastapi_offline") / "static"
    assets = {name: (static / name).read_bytes() for name in DOCS_ASSETS}

    def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    def asset(name: str):
        if name not in assets:
            return Response(status_code=404)
        return Response(
            assets[name], media_type=mimetypes.guess_type(name)[0], headers={"Cache-Control": "max-age=86400"}
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs-assets/{name}", asset, methods=["GET"], include_in_schema=False)


def _responder(filename: str, media_type: str):
    from fastapi.responses import Response

    content = (STATIC / filename).read_bytes()

    def serve() -> Response:
        return Response(content, media_type=media_type, headers=HEADERS)

    return serve
