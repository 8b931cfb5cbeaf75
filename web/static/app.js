// Top hashtags as a horizontal bar chart, refreshed every few seconds.
const REFRESH_MS = 3000;
const statusEl = document.getElementById("status");

const chart = new Chart(document.getElementById("hashtags-chart"), {
  type: "bar",
  data: { labels: [], datasets: [{ label: "posts", data: [], backgroundColor: "#1d6fb8" }] },
  options: {
    indexAxis: "y",
    animation: false,
    maintainAspectRatio: false,
    plugins: { legend: { display: false } },
    scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
  },
});

function fillTable(rows) {
  const body = document.querySelector("#hashtags-table tbody");
  body.replaceChildren(...rows.map(r => {
    const tr = document.createElement("tr");
    for (const v of ["#" + r.hashtag, r.count]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  }));
}

async function refresh() {
  try {
    const res = await fetch("/api/hashtags?limit=25");
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const rows = await res.json();
    chart.data.labels = rows.map(r => "#" + r.hashtag);
    chart.data.datasets[0].data = rows.map(r => r.count);
    chart.update();
    fillTable(rows);
    statusEl.textContent = rows.length
      ? `${rows.length} hashtags shown · updated ${new Date().toLocaleTimeString()}`
      : "no hashtags counted yet — replay a file: make replay FILE=samples/posts.jsonl";
  } catch (err) {
    statusEl.textContent = `cannot reach the API (${err.message}); retrying`;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
