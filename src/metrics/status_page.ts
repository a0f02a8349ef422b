// The live status page every metrics listener serves at /: one self-contained HTML document (no
// external assets, no framework) that fetches /status.json every two seconds and draws what the
// daemon put there: a row of tiles (figures read at a glance) and tables (running jobs, recent
// jobs, operations). What to show is the daemon's choice (StatusView); the page only draws it.
// Text goes in through textContent, never innerHTML: file names and peers come from clients.

/** What /status.json carries for the page, beside the program's raw figures. */
export interface StatusView {
  readonly tiles: ReadonlyArray<{ readonly label: string; readonly value: string; readonly tone?: 'good' | 'warn' | 'bad' }>;
  readonly tables: ReadonlyArray<{ readonly title: string; readonly columns: readonly string[]; readonly rows: ReadonlyArray<readonly (string | number)[]>; readonly empty?: string }>;
}

/** The page's HTML for `program` (its title; the data names the program too). */
export function statusPage(program: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${program.replace(/[^\w.-]/g, '')} status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2329}
header{background:#1d2b3a;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:baseline}
header h1{font-size:18px;margin:0}header span{opacity:.8}
#err{color:#ffb4a9}
main{padding:14px 18px}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:16px}
.tile{background:#fff;border-radius:6px;padding:8px 14px;min-width:110px;box-shadow:0 1px 2px #0002}
.tile b{display:block;font-size:22px}.tile small{color:#5b6670}
.good b{color:#1f7a3a}.warn b{color:#a86400}.bad b{color:#b3261e}
h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px #0002;font-size:13px}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #e3e6ea;white-space:nowrap;max-width:36em;overflow:hidden;text-overflow:ellipsis}
th{background:#e9edf1}td.empty{color:#5b6670;font-style:italic}
.scroll{max-height:420px;overflow:auto}
</style></head>
<body><header><h1 id="prog">${program.replace(/[^\w.-]/g, '')}</h1><span id="meta">loading…</span><span id="err"></span></header>
<main><div class="tiles" id="tiles"></div><div id="tables"></div></main>
<script>
"use strict";
function el(tag, cls, text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=String(text);return e;}
function draw(s){
  document.getElementById("meta").textContent="pid "+s.pid+" · up "+s.uptimeSeconds+" s · "+new Date(s.now).toLocaleTimeString();
  document.getElementById("err").textContent="";
  var tiles=document.getElementById("tiles");tiles.replaceChildren();
  (s.tiles||[]).forEach(function(t){var d=el("div","tile"+(t.tone?" "+t.tone:""));d.appendChild(el("b","",t.value));d.appendChild(el("small","",t.label));tiles.appendChild(d);});
  var tables=document.getElementById("tables");tables.replaceChildren();
  (s.tables||[]).forEach(function(t){
    tables.appendChild(el("h2","",t.title+" ("+t.rows.length+")"));
    var wrap=el("div","scroll"),tab=el("table"),head=el("tr");
    t.columns.forEach(function(c){head.appendChild(el("th","",c));});tab.appendChild(head);
    if(t.rows.length===0){var r=el("tr"),c=el("td","empty",t.empty||"none");c.colSpan=t.columns.length;r.appendChild(c);tab.appendChild(r);}
    t.rows.forEach(function(row){var r=el("tr");row.forEach(function(v){r.appendChild(el("td","",v));});tab.appendChild(r);});
    wrap.appendChild(tab);tables.appendChild(wrap);
  });
}
function refresh(){
  fetch("status.json",{cache:"no-store"}).then(function(r){if(!r.ok)throw new Error("HTTP "+r.status);return r.json();})
    .then(draw,function(e){document.getElementById("err").textContent="no answer: "+e.message;})
    .finally(function(){setTimeout(refresh,2000);});
}
refresh();
</script></body></html>
`;
}

/** "1.2 s", "35 ms": durations as a person reads them. */
export function humanMs(ms: number): string {
  return ms >= 10_000 ? `${Math.round(ms / 1000)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** "3.4 MB": sizes as a person reads them. */
export function humanBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let n = bytes;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
