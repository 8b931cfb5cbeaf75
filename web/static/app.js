// The dashboard: charts from the JSON API, refreshed when the server-sent
// event stream (/api/stream) says the counts changed.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#1d4ed8", "#b91c1c", "#047857", "#7c3aed", "#b45309", "#0e7490", "#be185d", "#4d7c0f", "#475569", "#9333ea"];
let windowChoice = "all";
let timelineTags = [];

function barChart(canvas, color) {
  return new Chart(canvas, {
    type: "bar",
    data: { labels: [], datasets: [{ label: "uses", data: [], backgroundColor: color }] },
    options: {
      indexAxis: "y", animation: false, maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}

const hashtagsChart = barChart($("hashtags-chart"), "#1d4ed8");
const wordsChart = barChart($("words-chart"), "#047857");
const timelineChart = new Chart($("timeline-chart"), {
  type: "line",
  data: { labels: [], datasets: [] },
  options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
});

async function getJSON(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

function fillTable(table, rows, key, prefix) {
  table.querySelector("tbody").replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    for (const v of [prefix + r[key], r.count]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  }));
}

function showBars(chart, table, rows, key, prefix) {
  chart.data.labels = rows.map((r) => prefix + r[key]);
  chart.data.datasets[0].data = rows.map((r) => r.count);
  chart.update();
  fillTable(table, rows, key, prefix);
}

function minuteLabel(ms) {
  return new Date(ms).toISOString().slice(11, 16);
}

async function refreshCounts() {
  const w = encodeURIComponent(windowChoice);
  const [tags, words] = await Promise.all([
    getJSON(`/api/hashtags?limit=20&window=${w}`),
    getJSON(`/api/unigrams?limit=20&window=${w}`),
  ]);
  showBars(hashtagsChart, $("hashtags-table"), tags, "hashtag", "#");
  showBars(wordsChart, $("words-table"), words, "word", "");
}

async function refreshTimeline() {
  const q = timelineTags.map((t) => `hashtag=${encodeURIComponent(t)}`).join("&");
  showTimeline(await getJSON(`/api/timeline?minutes=60${q ? "&" + q : ""}`));
}

function showTimeline(tl) {
  timelineChart.data.labels = tl.start_ms === null ? [] : Array.from({ length: tl.minutes }, (_, i) => minuteLabel(tl.start_ms + i * 60000));
  timelineChart.data.datasets = tl.series.map((s, i) => ({
    label: "#" + s.hashtag, data: s.counts, borderColor: COLORS[i % COLORS.length],
    backgroundColor: COLORS[i % COLORS.length], pointRadius: 0, tension: 0.2,
  }));
  timelineChart.update();
}

async function refreshTrending() {
  showTrending(await getJSON("/api/trending?limit=10"));
}

function showTrending(rows) {
  const list = $("trending");
  if (!rows.length) {
    const li = document.createElement("li");
    li.textContent = "nothing trending yet (it needs a closed window with 3 or more recent uses)";
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(...rows.map((r) => {
    const li = document.createElement("li");
    li.innerHTML = `<strong></strong> <span class="score"></span>`;
    li.querySelector("strong").textContent = "#" + r.hashtag;
    li.querySelector(".score").textContent = `×${r.score.toFixed(1)} (${r.recent} in 15 min, ${r.previous} in the hour before)`;
    return li;
  }));
}

function ago(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

async function refreshStats() {
  const s = await getJSON("/api/stats");
  $("tracked").textContent = `tracking ${s.tracked_keywords.map((k) => `“${k}”`).join(", ")} · languages: ${s.tracked_languages.join(", ")}`;
  $("stat-posts").textContent = s.posts_counted.toLocaleString();
  $("stat-newest").textContent = s.newest_event ? new Date(s.newest_event).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–";
  const fresh = s.freshness_seconds;
  $("stat-fresh").textContent = fresh === null ? "no counts yet" : `updated ${ago(fresh)}`;
  $("fresh-dot").className = "dot " + (fresh === null ? "" : fresh < 10 ? "ok" : fresh < 120 ? "late" : "stale");
  $("stat-rejects").textContent = `${s.rejected.producer} / ${s.rejected.dead_letter}`;
  const p = s.pipeline;
  // progress is health: a stage with work waiting that does not move is "stalled"
  const moving = p.stages.some((st) => st.state === "moving");
  $("stat-pipeline").textContent = p.stalled.length ? p.stalled.join(" · ")
    : p.healthy ? `v${p.version} running, ${moving ? "counting" : "up to date"}`
    : `${p.flink_job}; ${Object.entries(p.connectors).map(([k, v]) => `${k} ${v}`).join(", ")}`;
  $("pipeline-dot").className = "dot " + (p.stalled.length ? "stale" : p.healthy ? "ok" : "late");
}

let pending = null;
function refreshAll() {
  // at most one refresh in flight; updates arriving meanwhile are folded into the next one
  if (pending) { pending.again = true; return; }
  pending = { again: false };
  Promise.allSettled([refreshCounts(), refreshTimeline(), refreshTrending(), refreshStats()]).then((results) => {
    const failed = results.filter((r) => r.status === "rejected");
    $("live").textContent = failed.length ? `could not load: ${failed[0].reason.message}` : `updated ${new Date().toLocaleTimeString()}`;
    const again = pending.again;
    pending = null;
    if (again) refreshAll();
  });
}

document.querySelectorAll("input[name=window]").forEach((radio) => radio.addEventListener("change", () => {
  windowChoice = radio.value;
  refreshCounts();
}));
$("timeline-form").addEventListener("submit", (e) => {
  e.preventDefault();
  timelineTags = $("timeline-tags").value.split(",").map((t) => t.trim().replace(/^#/, "").toLowerCase()).filter(Boolean);
  refreshTimeline();
});

// Live updates: the server pushes an event when the counts change; the stats'
// freshness is re-read every 5 s so "updated N s ago" stays true in a quiet stream.
// The event carries what the page shows by default (all-time tops, trending,
// the top hashtags' timeline): only what it does not carry is fetched again.
function onUpdate(event) {
  const d = JSON.parse(event.data);
  $("stat-posts").textContent = d.posts_counted.toLocaleString();
  showTrending(d.trending);
  const parts = [];
  if (timelineTags.length) parts.push(refreshTimeline());
  else showTimeline(d.timeline);
  if (windowChoice === "all") {
    showBars(hashtagsChart, $("hashtags-table"), d.hashtags, "hashtag", "#");
    showBars(wordsChart, $("words-table"), d.unigrams, "word", "");
  } else {
    parts.push(refreshCounts());
  }
  Promise.allSettled(parts).then((results) => {
    const failed = results.filter((r) => r.status === "rejected");
    $("live").textContent = failed.length ? `could not load: ${failed[0].reason.message}` : `updated ${new Date().toLocaleTimeString()}`;
  });
}

const events = new EventSource("/api/stream");
events.addEventListener("update", onUpdate);
events.onerror = () => { $("live").textContent = "live updates interrupted; reconnecting…"; };
setInterval(refreshStats, 5000);
refreshAll();
