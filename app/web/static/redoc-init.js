// Starts Redoc on /redoc (a file, so the page's Content-Security-Policy needs no inline script).
const root = document.getElementById("redoc");
window.Redoc.init(root.dataset.openapiUrl, { hideDownloadButton: false }, root);
