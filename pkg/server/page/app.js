"use strict";
// The page's only requests go to this server: the model list, then one
// POST /v1/classify per photo with the file as the raw body.
const $ = (id) => document.getElementById(id);

async function loadModels() {
  const resp = await fetch("v1/models");
  const list = await resp.json();
  for (const m of list.models) {
    const opt = document.createElement("option");
    opt.value = opt.textContent = m.name;
    $("model").append(opt);
  }
}

function show(record, ms) {
  const results = $("results");
  results.replaceChildren();
  for (const p of record.predictions) {
    const li = document.createElement("li");
    const row = document.createElement("div");
    row.className = "row";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = p.label;
    const prob = document.createElement("span");
    prob.className = "prob";
    const pct = p.probability === null ? NaN : 100 * p.probability;
    prob.textContent = pct.toFixed(1) + " %";
    row.append(label, prob);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (isNaN(pct) ? 0 : pct) + "%";
    li.append(row, bar);
    results.append(li);
  }
  $("status").className = "";
  $("status").textContent = "Took " + Math.round(ms) + " ms";
  $("output").hidden = false;
}

async function classify(file) {
  if (!file) return;
  $("status").className = "";
  $("status").textContent = "Classifying " + file.name + "…";
  $("preview").src = URL.createObjectURL(file);
  const start = performance.now();
  try {
    const url = "v1/classify?topk=5&model=" + encodeURIComponent($("model").value);
    const resp = await fetch(url, { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error || resp.statusText);
    show(body, performance.now() - start);
  } catch (err) {
    $("output").hidden = true;
    $("status").className = "error";
    $("status").textContent = "Error: " + err.message;
  }
}

$("file").addEventListener("change", (e) => classify(e.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  classify(e.dataTransfer.files[0]);
});
loadModels().catch((err) => { $("status").className = "error"; $("status").textContent = "Error: " + err.message; });
