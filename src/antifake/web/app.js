// antifake web page: upload -> job -> poll -> verdict, heatmap overlay, timeline, evidence.
// Vanilla JS, no build step, no external requests. The API contract is docs/web.md.
// Every string from the server (file names, metadata, evidence) is inserted with
// textContent, never as HTML: it comes from an untrusted file.
"use strict";

(() => {
  const KEY_STORAGE = "antifake.apiKey";
  const POLL_START_MS = 500;
  const POLL_MAX_MS = 2000;
  const VERDICT_LABELS = {
    ai_generated: "AI-generated",
    authentic: "Authentic",
    uncertain: "Uncertain",
  };
  const STANCE_LABELS = {
    ai: "evidence for AI",
    authentic: "evidence of a real capture",
  };
  // Okabe-Ito palette: distinguishable for colour-blind readers.
  const SERIES_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000"];

  const $ = (id) => document.getElementById(id);
  const el = {
    keyForm: $("key-form"), keyInput: $("api-key"), keyClear: $("key-clear"), keyStatus: $("key-status"),
    drop: $("dropzone"), fileInput: $("file-input"),
    status: $("status"), statusText: $("status-text"), progress: $("progress"), error: $("error"),
    results: $("results"), viewer: $("viewer"), frameImg: $("frame-img"), heatImg: $("heatmap-img"),
    caption: $("viewer-caption"), controls: $("heatmap-controls"), opacity: $("opacity"),
    opacityValue: $("opacity-value"), detectorSelect: $("heatmap-detector"),
    detectorLabel: $("heatmap-detector-label"), noHeatmap: $("no-heatmap"),
    timeline: $("timeline"), canvas: $("timeline-canvas"), legend: $("timeline-legend"),
    readout: $("timeline-readout"),
    fileName: $("file-name"), verdict: $("verdict"), probability: $("probability"),
    generator: $("generator"), mediaSummary: $("media-summary"), meterFill: $("meter-fill"),
    reportHtml: $("report-html"), reportPdf: $("report-pdf"), evidence: $("evidence"),
    reasons: $("reasons"), sound: $("sound"), soundLabel: $("sound-label"),
    jobs: $("jobs"), jobList: $("job-list"), player: $("player"), audioPlayer: $("audio-player"),
    timelineTitle: $("timeline-title"),
  };

  let currentRun = 0; // incremented per upload; stale polls and image loads check it
  let objectUrls = [];
  let timelineState = null;
  let batch = []; // [{file, id, status, result, url, li}] of the last upload
  let shownIndex = -1;
  let currentView = 0; // incremented per shown result; stale image loads check it

  // ---- API key -------------------------------------------------------------------------
  function apiKey() {
    try { return localStorage.getItem(KEY_STORAGE) || ""; } catch { return ""; }
  }
  function authHeaders() {
    const key = apiKey();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }
  function showKeyStatus() {
    el.keyStatus.textContent = apiKey() ? "A key is saved in this browser." : "No key saved.";
  }
  el.keyInput.value = apiKey();
  showKeyStatus();
  el.keyForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = el.keyInput.value.trim();
    try {
      if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
    } catch { /* storage disabled: the key just is not remembered */ }
    showKeyStatus();
  });
  el.keyClear.addEventListener("click", () => {
    el.keyInput.value = "";
    try { localStorage.removeItem(KEY_STORAGE); } catch { /* ignore */ }
    showKeyStatus();
  });

  // ---- HTTP helpers --------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function errorMessage(resp) {
    let message = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      if (body && body.error && body.error.message) message = body.error.message;
      else if (body && typeof body.detail === "string") message = body.detail;
      else if (body && body.detail && body.detail.message) message = body.detail.message;
    } catch { /* not JSON */ }
    if (resp.status === 401 || resp.status === 403) {
      message += " - this server needs a valid API key (top right).";
    }
    return message;
  }

  async function api(path, options = {}) {
    const resp = await fetch(path, {
      ...options,
      headers: { Accept: "application/json", ...authHeaders(), ...(options.headers || {}) },
      cache: "no-store",
    });
    if (!resp.ok) throw new ApiError(resp.status, await errorMessage(resp));
    return resp;
  }

  async function blobUrl(path) {
    const resp = await fetch(path, { headers: authHeaders(), cache: "no-store" });
    if (resp.status === 404) return null;
    if (!resp.ok) throw new ApiError(resp.status, await errorMessage(resp));
    const url = URL.createObjectURL(await resp.blob());
    objectUrls.push(url);
    return url;
  }

  function releaseObjectUrls() {
    objectUrls.forEach((u) => URL.revokeObjectURL(u));
    objectUrls = [];
  }

  // ---- status / errors -----------------------------------------------------------------
  function setStatus(text, progress) {
    el.status.hidden = false;
    el.statusText.textContent = text;
    if (typeof progress === "number" && Number.isFinite(progress)) {
      el.progress.value = Math.max(0, Math.min(1, progress));
    } else {
      el.progress.removeAttribute("value"); // indeterminate
    }
  }
  function clearStatus() { el.status.hidden = true; }
  function showError(text) {
    el.error.textContent = text;
    el.error.hidden = false;
  }
  function clearError() { el.error.hidden = true; el.error.textContent = ""; }

  // ---- upload --------------------------------------------------------------------------
  el.drop.addEventListener("click", () => el.fileInput.click());
  el.drop.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); el.fileInput.click(); }
  });
  el.fileInput.addEventListener("change", () => {
    const files = el.fileInput.files ? [...el.fileInput.files] : [];
    if (files.length) analyseAll(files);
    el.fileInput.value = ""; // the same file can be chosen again
  });
  ["dragenter", "dragover"].forEach((type) => el.drop.addEventListener(type, (ev) => {
    ev.preventDefault();
    el.drop.classList.add("dragover");
  }));
  ["dragleave", "dragend"].forEach((type) => el.drop.addEventListener(type, () => {
    el.drop.classList.remove("dragover");
  }));
  el.drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    el.drop.classList.remove("dragover");
    const files = ev.dataTransfer && ev.dataTransfer.files ? [...ev.dataTransfer.files] : [];
    if (files.length) analyseAll(files);
  });
  // A file dropped next to the zone must not make the browser navigate away.
  window.addEventListener("dragover", (ev) => ev.preventDefault());
  window.addEventListener("drop", (ev) => ev.preventDefault());

  // One request uploads every file; each becomes a job in the list, polled until done.
  // The first finished one is shown; any finished one can be shown by clicking it.
  async function analyseAll(files) {
    const run = ++currentRun;
    clearError();
    el.results.hidden = true;
    batch.forEach((b) => b.url && URL.revokeObjectURL(b.url));
    batch = files.map((file) => ({ file, id: null, status: "uploading", result: null,
      url: URL.createObjectURL(file), li: null }));
    shownIndex = -1;
    renderJobList();
    el.drop.classList.add("busy");
    setStatus(files.length > 1 ? `Uploading ${files.length} files...` : `Uploading ${files[0].name}...`, null);
    try {
      const form = new FormData();
      files.forEach((file) => form.append("file", file, file.name));
      const created = await (await api("/v1/jobs", { method: "POST", body: form })).json();
      const jobs = Array.isArray(created.jobs) ? created.jobs : [created];
      if (jobs.length !== files.length || jobs.some((j) => !(j && (j.id || j.job_id)))) {
        throw new Error("the server did not return a job per file");
      }
      jobs.forEach((j, i) => { batch[i].id = j.id || j.job_id; batch[i].status = "queued"; });
      renderJobList();
      await Promise.all(batch.map((b, i) => pollEntry(b, i, run)));
      if (run !== currentRun) return;
      clearStatus();
      if (shownIndex < 0) {
        const failed = batch.find((b) => b.error);
        if (failed) showError(failed.error);
      }
    } catch (err) {
      if (run !== currentRun) return;
      clearStatus();
      batch.forEach((b) => { if (b.status === "uploading") b.status = "failed"; });
      renderJobList();
      showError(err && err.message ? err.message : String(err));
    } finally {
      if (run === currentRun) el.drop.classList.remove("busy");
    }
  }

  async function pollEntry(entry, index, run) {
    const done = await poll(entry.id, run, batch.length === 1 ? null : entry);
    if (run !== currentRun || done.status === "cancelled") return;
    entry.status = done.status;
    if (done.status === "failed") {
      const err = done.error || (done.result && done.result.error) || {};
      entry.error = `Analysis of ${entry.file.name} failed: ${err.message || err.code || "unknown error"}`;
    } else if (!done.result) {
      entry.status = "failed";
      entry.error = "the job finished without a result";
    } else if (done.result.error) {
      entry.status = "failed";
      entry.error = `Cannot analyse ${done.result.file || entry.file.name}: ${done.result.error.message || done.result.error.code}`;
    } else {
      entry.result = done.result;
    }
    renderJobList();
    if (entry.result && shownIndex < 0) await showEntry(index, run);
  }

  async function showEntry(index, run) {
    const entry = batch[index];
    if (!entry || !entry.result) return;
    shownIndex = index;
    renderJobList();
    clearError();
    if (run !== currentRun) return;
    await showResult(entry.id, entry.result, ++currentView);
  }

  function renderJobList() {
    el.jobs.hidden = batch.length < 2;
    el.jobList.replaceChildren();
    batch.forEach((entry, index) => {
      const li = document.createElement("li");
      li.className = `job ${entry.status}${index === shownIndex ? " shown" : ""}`;
      li.dataset.status = entry.status;
      const name = document.createElement(entry.result ? "button" : "span");
      name.className = "job-name";
      name.textContent = entry.file.name;
      if (entry.result) {
        name.type = "button";
        name.addEventListener("click", () => showEntry(index, currentRun));
      }
      const state = document.createElement("span");
      state.className = "job-state";
      if (entry.result) {
        const v = entry.result.verdict || "none";
        state.textContent = `${VERDICT_LABELS[v] || "No verdict"} \u00b7 ${pct(entry.result.ai_probability)}`;
        state.classList.add(v);
      } else if (entry.status === "running" && typeof entry.progress === "number") {
        state.textContent = `analysing ${Math.round(entry.progress * 100)}%`;
      } else {
        state.textContent = entry.error ? "failed" : entry.status;
      }
      li.append(name, state);
      el.jobList.append(li);
    });
  }

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  async function poll(id, run, entry) {
    let delay = POLL_START_MS;
    for (;;) {
      if (run !== currentRun) return { status: "cancelled" };
      const job = await (await api(`/v1/jobs/${encodeURIComponent(id)}`)).json();
      if (job.status === "succeeded" || job.status === "failed") return job;
      if (entry) { // one of several: its line in the job list shows the progress
        entry.status = job.status;
        entry.progress = job.progress;
        renderJobList();
        const running = batch.filter((b) => !b.result && !b.error).length;
        setStatus(`Analysing ${batch.length} files (${running} to go)...`, null);
      } else {
        const label = job.status === "running"
          ? `Analysing${job.stage ? ` (${job.stage})` : ""}...`
          : "Waiting in the queue...";
        setStatus(label, typeof job.progress === "number" ? job.progress : null);
      }
      await sleep(delay);
      delay = Math.min(POLL_MAX_MS, delay * 1.5);
    }
  }

  // ---- result rendering ----------------------------------------------------------------
  function pct(p) { return p === null || p === undefined ? "n/a" : `${(p * 100).toFixed(1)}%`; }

  function mediaSummary(result) {
    const m = result.media || {};
    const parts = [];
    if (m.format) parts.push(String(m.format).toUpperCase());
    if (m.width && m.height) parts.push(`${m.width}\u00d7${m.height}`);
    if (result.media_type === "audio" && typeof m.sample_rate === "number") {
      parts.push(`${(m.sample_rate / 1000).toFixed(1).replace(/\.0$/, "")} kHz`);
      if (typeof m.channels === "number") parts.push(m.channels === 1 ? "mono" : `${m.channels} channels`);
    }
    if (result.media_type === "video" || result.media_type === "audio") {
      if (typeof m.duration_s === "number") parts.push(`${m.duration_s.toFixed(2)} s`);
      if (typeof m.fps === "number") parts.push(`${m.fps.toFixed(2).replace(/\.?0+$/, "")} fps`);
    }
    if (typeof m.size_bytes === "number") parts.push(formatBytes(m.size_bytes));
    return parts.join(" \u00b7 ") || "unknown";
  }

  function formatBytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function generatorText(g) {
    if (!g) return "none attributed";
    const name = g.name ? `${g.name} (${g.family})` : g.family;
    return `${name}, ${pct(g.probability)}`;
  }

  async function showResult(id, result, run) {
    releaseObjectUrls();
    const base = `/v1/jobs/${encodeURIComponent(id)}`;

    el.fileName.textContent = result.file || "";
    const verdictKey = result.verdict || "none";
    el.verdict.className = `verdict ${verdictKey}`;
    el.verdict.textContent = VERDICT_LABELS[verdictKey] || "No verdict";
    el.probability.textContent = pct(result.ai_probability);
    el.reasons.replaceChildren();
    for (const reason of result.reasons || []) {
      const li = document.createElement("li");
      li.textContent = String(reason);
      el.reasons.append(li);
    }
    el.generator.textContent = generatorText(result.generator);
    el.sound.hidden = el.soundLabel.hidden = !result.audio;
    if (result.audio) {
      el.sound.textContent = `${result.audio.speech === "sounds_synthetic" ? "speech sounds synthesised" : "speech not flagged"} \u00b7 P(synthetic) ${pct(result.audio.p_synthetic)}${result.audio.counted_in_verdict ? "" : " (not part of the verdict)"}`;
    }
    el.mediaSummary.textContent = mediaSummary(result);
    el.meterFill.style.left = `calc(${((result.ai_probability ?? 0.5) * 100).toFixed(1)}% - 1px)`;

    setupDownload(el.reportHtml, `${base}/report`, "report.html");
    setupDownload(el.reportPdf, `${base}/report?format=pdf`, "report.pdf");

    renderEvidence(result);
    el.results.hidden = false;
    document.body.classList.add("has-results");
    clearStatus();
    renderTimeline(result);
    await renderViewer(base, result, run);
  }

  function renderEvidence(result) {
    el.evidence.replaceChildren();
    const dets = result.detectors || [];
    if (!dets.length) {
      const li = document.createElement("li");
      li.textContent = "No detector ran on this file.";
      el.evidence.append(li);
      return;
    }
    // Evidence for the verdict first (AI, then authentic), then neutral results; only
    // results that pushed the verdict towards AI are shown as AI evidence (red).
    const order = { ai: 0, authentic: 1, neutral: 2 };
    const sorted = [...dets].sort((a, b) => (order[a.stance] ?? 2) - (order[b.stance] ?? 2)
      || (b.score ?? -1) - (a.score ?? -1));
    for (const d of sorted) {
      const li = document.createElement("li");
      li.className = "ev";
      li.dataset.detector = d.detector;
      const head = document.createElement("div");
      head.className = "ev-head";
      const name = document.createElement("span");
      const nameText = document.createElement("span");
      nameText.className = "ev-name";
      nameText.textContent = d.detector;
      const kind = document.createElement("span");
      kind.className = "ev-kind";
      kind.textContent = d.kind || "";
      name.append(nameText, kind);
      if (d.decisive) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "decisive";
        name.append(badge);
      }
      const score = document.createElement("span");
      score.className = "ev-score";
      if (d.score === null || d.score === undefined) {
        score.textContent = "no opinion";
      } else {
        score.textContent = `P(AI) ${pct(d.score)}`;
        if (d.stance === "ai") score.classList.add("high");
        else if (d.stance === "authentic") score.classList.add("low");
        else score.classList.add("neutral");
      }
      const role = document.createElement("span");
      role.className = `ev-role ${d.stance || "neutral"}`;
      const voted = result.fusion && result.fusion.contributions
        && Object.prototype.hasOwnProperty.call(result.fusion.contributions, d.detector);
      role.textContent = d.stance === "neutral" || !STANCE_LABELS[d.stance]
        ? (voted ? "too weak to count either way" : "does not vote")
        : STANCE_LABELS[d.stance];
      if (d.score !== null && d.score !== undefined) name.append(role);
      head.append(name, score);
      li.append(head);
      if (d.summary) {
        const p = document.createElement("p");
        p.className = "ev-summary";
        p.textContent = d.summary;
        li.append(p);
      }
      if (Array.isArray(d.evidence) && d.evidence.length) {
        const ul = document.createElement("ul");
        ul.className = "ev-items";
        for (const item of d.evidence) {
          const it = document.createElement("li");
          it.textContent = String(item);
          ul.append(it);
        }
        li.append(ul);
      }
      if (d.error) {
        const p = document.createElement("p");
        p.className = "ev-error";
        p.textContent = `Failed: ${d.error.message || d.error.code}`;
        li.append(p);
      }
      const meta = document.createElement("p");
      meta.className = "ev-meta";
      const version = d.details && d.details.version ? `version ${d.details.version}` : "";
      meta.textContent = [version, typeof d.elapsed_ms === "number" ? `${d.elapsed_ms.toFixed(0)} ms` : ""]
        .filter(Boolean).join(" \u00b7 ");
      li.append(meta);
      el.evidence.append(li);
    }
  }

  function setupDownload(link, url, fallbackName) {
    link.href = url;
    link.removeAttribute("aria-disabled");
    link.onclick = async (ev) => {
      // A plain link cannot send the Authorization header: fetch, then save the blob.
      if (!apiKey()) return; // no key: let the browser follow the link
      ev.preventDefault();
      link.setAttribute("aria-disabled", "true");
      try {
        const resp = await fetch(url, { headers: authHeaders() });
        if (!resp.ok) throw new ApiError(resp.status, await errorMessage(resp));
        const blob = await resp.blob();
        const name = filenameFrom(resp.headers.get("Content-Disposition")) || fallbackName;
        const tmp = document.createElement("a");
        tmp.href = URL.createObjectURL(blob);
        tmp.download = name;
        document.body.append(tmp);
        tmp.click();
        tmp.remove();
        setTimeout(() => URL.revokeObjectURL(tmp.href), 10000);
      } catch (err) {
        showError(`Report download failed: ${err.message || err}`);
      } finally {
        link.removeAttribute("aria-disabled");
      }
    };
  }

  function filenameFrom(disposition) {
    if (!disposition) return null;
    const star = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
    if (star) { try { return decodeURIComponent(star[1]); } catch { /* fall through */ } }
    const plain = /filename="?([^";]+)"?/i.exec(disposition);
    return plain ? plain[1] : null;
  }

  // ---- heatmap viewer ------------------------------------------------------------------
  function applyOpacity() {
    const v = Number(el.opacity.value);
    el.heatImg.style.opacity = String(v / 100);
    el.opacityValue.textContent = `${v}%`;
    el.opacity.setAttribute("aria-valuetext", `${v} percent`);
  }
  el.opacity.addEventListener("input", applyOpacity);

  async function loadInto(img, url) {
    img.src = url;
    try {
      await img.decode();
    } catch (err) {
      if (img.src === url) throw err; // superseded by a newer result: nothing to report
    }
  }

  async function renderViewer(base, result, run) {
    const withMaps = (result.detectors || []).filter((d) => d.has_heatmap);
    el.detectorSelect.replaceChildren();
    const several = withMaps.length > 1;
    el.detectorSelect.hidden = !several;
    el.detectorLabel.hidden = !several;
    if (several) {
      const byScore = [...withMaps].sort((a, b) => (b.score ?? -1) - (a.score ?? -1));
      for (const d of byScore) {
        const opt = document.createElement("option");
        opt.value = d.detector;
        opt.textContent = `${d.detector} (${pct(d.score)})`;
        el.detectorSelect.append(opt);
      }
      el.detectorSelect.onchange = () => loadImages(base, result, el.detectorSelect.value, run);
    }
    await loadImages(base, result, null, run);
  }

  async function loadImages(base, result, detector, run) {
    const q = detector ? `detector=${encodeURIComponent(detector)}` : "";
    const frameUrl = await blobUrl(`${base}/frame.png${q ? `?${q}` : ""}`);
    if (run !== currentView) return;
    if (!frameUrl) { el.viewer.hidden = true; return; }
    el.viewer.hidden = false;
    const isVideo = result.media_type === "video";
    const isAudio = result.media_type === "audio";
    el.frameImg.alt = isAudio ? "Spectrogram of the sound"
      : isVideo ? "The analysed video frame" : "The analysed image";
    await loadInto(el.frameImg, frameUrl);
    const heatUrl = await blobUrl(`${base}/heatmap.png?overlay=0${q ? `&${q}` : ""}`);
    if (run !== currentView) return;
    if (heatUrl) {
      await loadInto(el.heatImg, heatUrl);
      el.heatImg.hidden = false;
      el.controls.hidden = false;
      el.noHeatmap.hidden = true;
      applyOpacity();
      const shown = detector || pickDefaultHeatmap(result);
      el.caption.textContent = `Heatmap of ${shown || "the detectors"}${isVideo ? " on the most suspicious frame" : ""}: ${heatmapMeaning(result, shown)}.`;
    } else {
      el.heatImg.removeAttribute("src");
      el.heatImg.hidden = true;
      el.controls.hidden = true;
      el.noHeatmap.hidden = false;
      el.caption.textContent = isAudio
        ? "Spectrogram of the first two minutes of sound (0\u20138 kHz, low frequencies at the bottom); the timeline below gives P(synthetic speech) per 2-second window."
        : isVideo ? "First frame of the video." : "";
    }
  }

  // The default heatmap is the one that explains the verdict: a detector that counted for
  // it, else the generator-trace map; never a neutral localisation aid when there is more.
  function pickDefaultHeatmap(result) {
    const withMaps = (result.detectors || []).filter((d) => d.has_heatmap);
    if (!withMaps.length) return null;
    const want = result.verdict === "ai_generated" ? "ai" : "authentic";
    const counted = withMaps.filter((d) => d.stance === want);
    const pool = counted.length ? counted
      : withMaps.filter((d) => d.detector === "forensic_image").length
        ? withMaps.filter((d) => d.detector === "forensic_image") : withMaps;
    return pool.reduce((a, b) => ((b.score ?? -1) > (a.score ?? -1) ? b : a)).detector;
  }

  // What a heatmap shows, as its detector says (details.heatmap_meaning).
  function heatmapMeaning(result, detector) {
    const d = (result.detectors || []).find((x) => x.detector === detector);
    return (d && d.details && d.details.heatmap_meaning)
      || "warm colours mark regions this detector finds more likely AI-generated";
  }

  // ---- timeline chart ------------------------------------------------------------------
  // ---- playback: the uploaded file plays in the browser (nothing is fetched again); the
  // timeline follows the playhead and a click on the timeline seeks.
  function setupPlayer(result) {
    for (const p of [el.player, el.audioPlayer]) {
      p.pause();
      p.hidden = true;
      p.removeAttribute("src");
    }
    const entry = batch[shownIndex] || batch[0];
    if (!entry || !timelineState) return null;
    const player = result.media_type === "video" ? el.player
      : result.media_type === "audio" ? el.audioPlayer : null;
    if (!player || !player.canPlayType(entry.file.type || "")) return null;
    player.src = entry.url;
    player.hidden = false;
    return player;
  }

  function activePlayer() {
    return [el.player, el.audioPlayer].find((p) => !p.hidden) || null;
  }

  function readoutAt(t) {
    if (!timelineState) return;
    const parts = timelineState.series.map((s) => {
      let best = 0;
      s.times.forEach((ti, i) => { if (Math.abs(ti - t) < Math.abs(s.times[best] - t)) best = i; });
      return `${s.name} ${pct(s.values[best])} @ ${s.times[best].toFixed(2)} s`;
    });
    el.readout.textContent = parts.join(" \u00b7 ");
    drawTimeline(t);
  }

  for (const p of [el.player, el.audioPlayer]) {
    p.addEventListener("timeupdate", () => { if (!p.hidden) readoutAt(p.currentTime); });
  }

  function renderTimeline(result) {
    const series = (result.detectors || [])
      .filter((d) => Array.isArray(d.timeline) && Array.isArray(d.timeline_times_s)
        && d.timeline.length > 0 && d.timeline.length === d.timeline_times_s.length)
      .map((d, i) => ({ name: d.detector, values: d.timeline, times: d.timeline_times_s,
        colour: SERIES_COLOURS[i % SERIES_COLOURS.length] }));
    if ((result.media_type !== "video" && result.media_type !== "audio") || !series.length) {
      for (const p of [el.player, el.audioPlayer]) { p.pause(); p.hidden = true; }
      el.timeline.hidden = true;
      timelineState = null;
      el.canvas.dataset.drawn = "false";
      return;
    }
    el.timeline.hidden = false;
    const duration = (result.media && result.media.duration_s) || 0;
    const lastT = Math.max(...series.map((s) => Math.max(...s.times)));
    // Per-detector curves carry no fused threshold (an authentic video's temporal curve
    // crossing it would read as AI frames); audio has one voting detector, whose own
    // threshold is drawn.
    const speech = (result.detectors || []).find((d) => d.detector === "synthetic_speech");
    const threshold = result.media_type === "audio" && speech && speech.details
      && typeof speech.details.threshold === "number" ? speech.details.threshold : null;
    timelineState = { series, tMax: Math.max(duration, lastT, 1e-3), threshold };
    drawTimeline();

    el.legend.replaceChildren();
    for (const s of series) {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = s.colour;
      const label = document.createElement("span");
      const peak = Math.max(...s.values);
      label.textContent = `${s.name} (peak ${pct(peak)})`;
      li.append(sw, label);
      el.legend.append(li);
    }
    if (threshold !== null) {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch dashed";
      const label = document.createElement("span");
      label.textContent = `synthetic-speech threshold ${pct(threshold)}`;
      li.append(sw, label);
      el.legend.append(li);
    }
    el.canvas.setAttribute("aria-label", `Per-frame AI probability over ${timelineState.tMax.toFixed(1)} s for ${series.map((s) => s.name).join(", ")}`);
    const player = setupPlayer(result);
    el.timelineTitle.textContent = result.media_type === "audio" ? "Per-second scores" : "Per-frame scores";
    el.readout.textContent = player
      ? "Play the file, or click the chart to jump there: the scores under the playhead show here."
      : "Move the pointer over the chart to read the scores at a time.";
  }

  const PAD = { left: 44, right: 12, top: 10, bottom: 28 };

  function chartGeometry() {
    const rect = el.canvas.getBoundingClientRect();
    const w = Math.max(200, Math.round(rect.width || 760));
    const h = Math.max(120, Math.round(rect.height || 220));
    return { w, h, pw: w - PAD.left - PAD.right, ph: h - PAD.top - PAD.bottom };
  }

  function drawTimeline(cursorT) {
    if (!timelineState) return;
    const { series, tMax, threshold } = timelineState;
    const { w, h, pw, ph } = chartGeometry();
    const dpr = window.devicePixelRatio || 1;
    if (el.canvas.width !== Math.round(w * dpr) || el.canvas.height !== Math.round(h * dpr)) {
      el.canvas.width = Math.round(w * dpr);
      el.canvas.height = Math.round(h * dpr);
    }
    const ctx = el.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const x = (t) => PAD.left + (t / tMax) * pw;
    const y = (v) => PAD.top + (1 - v) * ph;

    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#5a6573";
    ctx.strokeStyle = "#e3e7ec";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      ctx.beginPath();
      ctx.moveTo(PAD.left, y(v) + 0.5);
      ctx.lineTo(PAD.left + pw, y(v) + 0.5);
      ctx.stroke();
      ctx.fillText(`${Math.round(v * 100)}%`, PAD.left - 6, y(v));
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const step = niceStep(tMax / 8);
    for (let t = 0; t <= tMax + 1e-9; t += step) {
      ctx.fillText(`${+t.toFixed(2)} s`, x(t), PAD.top + ph + 6);
    }
    ctx.strokeStyle = "#9aa6b5";
    ctx.strokeRect(PAD.left + 0.5, PAD.top + 0.5, pw, ph);

    if (threshold !== null) {
      ctx.setLineDash([5, 3]);
      ctx.strokeStyle = "#c0392b";
      ctx.beginPath();
      ctx.moveTo(PAD.left, y(threshold));
      ctx.lineTo(PAD.left + pw, y(threshold));
      ctx.stroke();
      ctx.setLineDash([]);
    }

    for (const s of series) {
      ctx.strokeStyle = s.colour;
      ctx.fillStyle = s.colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      s.values.forEach((v, i) => {
        const px = x(s.times[i]);
        const py = y(Math.max(0, Math.min(1, v)));
        if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      });
      ctx.stroke();
      if (s.values.length <= 60) {
        s.values.forEach((v, i) => {
          ctx.beginPath();
          ctx.arc(x(s.times[i]), y(Math.max(0, Math.min(1, v))), 2.5, 0, Math.PI * 2);
          ctx.fill();
        });
      }
    }
    if (typeof cursorT === "number") {
      ctx.strokeStyle = "rgba(20, 33, 58, 0.6)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x(cursorT), PAD.top);
      ctx.lineTo(x(cursorT), PAD.top + ph);
      ctx.stroke();
    }
    el.canvas.dataset.drawn = "true";
    el.canvas.dataset.series = String(series.length);
  }

  function niceStep(raw) {
    const mag = 10 ** Math.floor(Math.log10(raw || 1));
    for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * mag) return m * mag;
    return 10 * mag;
  }

  function timeAt(ev) {
    const rect = el.canvas.getBoundingClientRect();
    const { pw } = chartGeometry();
    return ((ev.clientX - rect.left - PAD.left) / pw) * timelineState.tMax;
  }
  el.canvas.addEventListener("mousemove", (ev) => {
    if (!timelineState) return;
    const t = timeAt(ev);
    if (t < 0 || t > timelineState.tMax) return;
    readoutAt(t);
  });
  el.canvas.addEventListener("click", (ev) => {
    const player = activePlayer();
    if (!timelineState || !player) return;
    const t = Math.max(0, Math.min(timelineState.tMax, timeAt(ev)));
    player.currentTime = t;
    readoutAt(t);
  });
  el.canvas.addEventListener("mouseleave", () => {
    const player = activePlayer();
    drawTimeline(player ? player.currentTime : undefined);
  });
  window.addEventListener("resize", () => drawTimeline());
})();
