// flowlane's own browser code shared by every page: CSRF on htmx requests, error messages.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Show a message in the page's #flash area (kind: error | ok | info); it fades after a while.
  function flash(html, kind) {
    var area = document.getElementById("flash");
    if (!area) { return; }
    var box = document.createElement("div");
    box.className = "flash " + (kind || "error");
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    box.innerHTML = html;
    // A server fragment is already a .flash box: unwrap it.
    var inner = box.querySelector(".flash");
    if (inner) { box = inner; }
    area.appendChild(box);
    setTimeout(function () { box.classList.add("fade"); }, 8000);
    setTimeout(function () { box.remove(); }, 9000);
  }

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  // fetch() with the session's CSRF token, for pages that talk to the JSON API (the designer).
  function api(method, url, body, contentType) {
    var headers = { "X-CSRF-Token": csrfToken(), "Accept": "application/json" };
    if (body !== undefined && body !== null) {
      headers["Content-Type"] = contentType || "application/json";
      if (typeof body !== "string") { body = JSON.stringify(body); }
    }
    return fetch(url, { method: method, headers: headers, body: body, credentials: "same-origin" })
      .then(function (res) {
        var kind = res.headers.get("content-type") || "";
        var parsed = kind.indexOf("json") >= 0 ? res.json() : res.text();
        return parsed.then(function (data) {
          if (!res.ok) {
            var err = new Error((data && data.detail) || res.statusText);
            err.status = res.status; err.data = data;
            throw err;
          }
          return data;
        });
      });
  }

  document.addEventListener("htmx:configRequest", function (evt) {
    evt.detail.headers["X-CSRF-Token"] = csrfToken();
  });
  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    var text = xhr.responseText || xhr.statusText || "Error";
    // Only the server's own HTML fragments are markup; any other answer (JSON, plain text,
    // a proxy's page) may repeat what was typed, so it is shown as text.
    var kind = xhr.getResponseHeader("Content-Type") || "";
    flash(kind.indexOf("text/html") === 0 ? text : escapeHtml(text), "error");
  });
  document.addEventListener("htmx:sendError", function () {
    flash(escapeHtml(document.documentElement.lang === "ru" ? "Нет связи с сервером" : "The server cannot be reached"), "error");
  });

  window.flowlane = { flash: flash, api: api, csrfToken: csrfToken, escapeHtml: escapeHtml };
})();
