/* ClypAI's dashboard: the little JavaScript its pages use (htmx does the polling).
   Listeners sit on the document, so they keep working when a page part is replaced. */
(function () {
  "use strict";

  // New clips: send the file with a progress bar (XHR), straight to S3 when the form
  // names a presign URL; without a file the form submits as usual.
  function showProgress(form, percent, text) {
    var box = form.querySelector(".upload-progress");
    box.hidden = false;
    form.querySelector("#upload-progress").value = percent;
    form.querySelector("#upload-progress-text").textContent = text;
  }

  function replacePage(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    document.title = doc.title;
    document.body.innerHTML = doc.body.innerHTML;
    if (window.htmx) window.htmx.process(document.body);
  }

  function sendWithProgress(form, body, onDone, quiet) {
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable && !quiet) {
        var pct = Math.round((100 * e.loaded) / e.total);
        showProgress(form, pct, "Uploading: " + pct + "%");
      }
    });
    xhr.addEventListener("load", function () { onDone(xhr); });
    xhr.addEventListener("error", function () {
      showProgress(form, 0, "The upload failed: check your connection and try again.");
      form.querySelector("button[type=submit]").disabled = false;
    });
    xhr.send(body);
  }

  function putToS3(form, file, done) {
    var data = new FormData();
    data.append("filename", file.name);
    data.append("size", String(file.size));
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    fetch(form.dataset.presign, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (result) {
        if (!result[0]) throw new Error(result[1].error || "upload refused");
        var xhr = new XMLHttpRequest();
        xhr.open("PUT", result[1].url);
        xhr.upload.addEventListener("progress", function (e) {
          if (e.lengthComputable) {
            var pct = Math.round((100 * e.loaded) / e.total);
            showProgress(form, pct, "Uploading: " + pct + "%");
          }
        });
        xhr.addEventListener("load", function () {
          if (xhr.status >= 300) {
            showProgress(form, 0, "The upload failed (" + xhr.status + "): try again.");
            form.querySelector("button[type=submit]").disabled = false;
            return;
          }
          done(result[1].upload_id);
        });
        // A refused preflight looks like this too: the bucket's CORS rules must allow a
        // PUT from this site (README, "Files on S3").
        xhr.addEventListener("error", function () {
          showProgress(form, 0, "The upload to the storage bucket failed: check your " +
            "connection and try again; if it keeps failing, the bucket may not allow " +
            "uploads from this site (its CORS rules).");
          form.querySelector("button[type=submit]").disabled = false;
        });
        xhr.send(file);
      })
      .catch(function (err) {
        showProgress(form, 0, "The upload failed: " + err.message);
        form.querySelector("button[type=submit]").disabled = false;
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "new-clips") return;
    var input = form.querySelector("input[type=file]");
    var file = input && input.files && input.files[0];
    if (!file || !window.FormData || !window.XMLHttpRequest) return;
    event.preventDefault();
    form.querySelector("button[type=submit]").disabled = true;
    showProgress(form, 0, "Uploading: 0%");
    if (form.dataset.presign) {
      putToS3(form, file, function (uploadId) {
        form.querySelector("[name=upload_id]").value = uploadId;
        var body = new FormData(form);
        body.delete(input.name);
        showProgress(form, 100, "Uploaded; starting the job…");
        sendWithProgress(form, body, finish, true);
      });
      return;
    }
    sendWithProgress(form, new FormData(form), finish);

    function finish(xhr) {
      var here = new URL(form.action || window.location.href, window.location.href);
      var landed = new URL(xhr.responseURL || here.href);
      if (xhr.status < 400 && landed.pathname !== here.pathname) {
        window.location.assign(landed.href);  // the job's page
      } else {
        replacePage(xhr.responseText);  // the form again, with what to fix
      }
    }
  });

  // Forms that destroy something ask first (data-confirm); without JavaScript they
  // submit as they are.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // Copy a shown-once secret.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.dataset.copy);
    field.select();
    if (navigator.clipboard) navigator.clipboard.writeText(field.value).catch(function () {});
    else document.execCommand("copy");
    button.textContent = "Copied";
  });

  // The clip page: clicking a word of the transcript moves Start to it when it comes
  // before the clip, End when after; inside the clip, whichever of the two is nearer.
  document.addEventListener("click", function (event) {
    var word = event.target.closest(".transcript .word");
    if (!word) return;
    var form = document.getElementById("cut-form");
    if (!form) return;
    var start = form.elements.start, end = form.elements.end;
    var ws = parseFloat(word.dataset.start), we = parseFloat(word.dataset.end);
    var s = parseFloat(start.value), e = parseFloat(end.value);
    var field;
    if (isNaN(s) || ws < s) field = "start";
    else if (isNaN(e) || we > e) field = "end";
    else field = ws - s <= e - we ? "start" : "end";
    if (field === "start") start.value = word.dataset.start;
    else end.value = word.dataset.end;
    var moved = field === "start" ? start : end;
    moved.dispatchEvent(new Event("change", { bubbles: true }));
    moved.classList.add("flash");
    setTimeout(function () { moved.classList.remove("flash"); }, 600);
  });

  // Brand kit: the sample frame follows the form as it is filled in.
  function sample() {
    var form = document.getElementById("kit-form");
    var frame = document.getElementById("sample-frame");
    if (!form || !frame) return;
    var value = function (name) { var f = form.elements[name]; return f ? f.value : ""; };
    var checked = function (name) { var f = form.elements[name]; return f ? f.checked : false; };
    var text = document.getElementById("sample-text");
    var size = parseInt(value("font_size"), 10) || 64;
    // 64 px on a 1080 px wide frame; the sample is about 260 px wide.
    text.style.fontSize = Math.max(10, Math.round((size * frame.clientWidth) / 1080 * 1.6)) + "px";
    text.style.fontFamily = '"' + value("font_family") + '", "DejaVu Sans", sans-serif';
    text.style.color = value("text_color");
    text.style.webkitTextStroke = "1px " + value("outline_color");
    text.style.textTransform = checked("uppercase") ? "uppercase" : "none";
    text.classList.toggle("boxed", checked("box"));
    text.querySelectorAll(".hl").forEach(function (el) { el.style.color = value("highlight_color"); });
    frame.dataset.position = value("position");
    frame.style.borderTop = "6px solid " + value("primary_color");
  }
  document.addEventListener("input", function (e) { if (e.target.form && e.target.form.id === "kit-form") sample(); });
  document.addEventListener("change", function (e) {
    var form = e.target.form;
    if (!form || form.id !== "kit-form") return;
    sample();
    if (e.target.name === "logo" && e.target.files && e.target.files[0]) {
      var img = document.getElementById("sample-logo");
      img.src = URL.createObjectURL(e.target.files[0]);
      img.hidden = false;
    }
  });
  document.addEventListener("DOMContentLoaded", sample);
  window.addEventListener("resize", sample);
})();
