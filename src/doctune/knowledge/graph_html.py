"""An interactive view of the knowledge graph in one self-contained HTML file (no network, no library to fetch).

Positions come from networkx's spring layout (fixed seed) and the graph is drawn as SVG in Python, so the file shows
the graph even without JavaScript. Inline JavaScript adds wheel zoom and drag pan, a side panel for a clicked node
(name, type, aliases, description, its relations with their quotes and sources) or edge (its citations), a search box
that highlights matching names, and a community filter that dims the rest. Every text comes from documents, so all
of it is escaped: ``html.escape`` in the markup, ``\\u003c``-escaped JSON for the script, ``textContent`` in JS.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

import networkx as nx

from doctune.knowledge.graph import edge_statement
from doctune.knowledge.rows import KGCommunity, KGEdge, KGNode

WIDTH, HEIGHT, MARGIN = 1000, 700, 40
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
    "#b07aa1", "#ff9da7", "#9c755f", "#86bcb6", "#d37295", "#a0cbe8",
)  # fmt: skip
NO_COMMUNITY = "#9aa0a6"
MANY_NODES = 120  # above this, labels of the less connected nodes show only when zoomed in

_CSS = """
body{margin:0;font:14px system-ui,sans-serif;color:#222;display:flex;height:100vh}
#main{flex:1;display:flex;flex-direction:column;min-width:0}
#bar{padding:6px 10px;border-bottom:1px solid #ddd;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
#bar h1{font-size:16px;margin:0 10px 0 0}
#graph{flex:1;width:100%;background:#fcfcfc;cursor:grab}
#side{width:380px;border-left:1px solid #ddd;overflow:auto;padding:10px}
.edge{stroke:#999;stroke-opacity:.6;cursor:pointer}
.edge:hover,.edge.sel{stroke:#d33;stroke-opacity:1}
.node{cursor:pointer}.node circle{stroke:#fff;stroke-width:1.5}
.node text{font-size:10px;pointer-events:none;paint-order:stroke;stroke:#fff;stroke-width:3px}
.node.hit circle{stroke:#d33;stroke-width:3}.node.sel circle{stroke:#000;stroke-width:3}
.dim{opacity:.12}
svg.many .node.minor text{display:none}svg.many.zoomed .node.minor text{display:inline}
.quote{background:#f6f6f6;border-left:3px solid #bbb;padding:3px 6px;margin:4px 0}
.src{color:#666;font-size:12px}
#communities li{margin-bottom:8px;cursor:pointer}
h2{font-size:15px;margin:8px 0}h3{font-size:14px;margin:10px 0 4px}
"""

_JS = """
(function(){
var data=JSON.parse(document.getElementById('kg-data').textContent);
var svg=document.getElementById('graph'),panel=document.getElementById('panel');
var W=__W__,H=__H__,vb={x:0,y:0,w:W,h:H};
function setVB(){svg.setAttribute('viewBox',vb.x+' '+vb.y+' '+vb.w+' '+vb.h);
 svg.classList.toggle('zoomed',vb.w<W/2.5);}
svg.addEventListener('wheel',function(ev){ev.preventDefault();var r=svg.getBoundingClientRect();
 var mx=vb.x+(ev.clientX-r.left)/r.width*vb.w,my=vb.y+(ev.clientY-r.top)/r.height*vb.h;
 var f=ev.deltaY<0?0.85:1/0.85;vb.w*=f;vb.h*=f;vb.x=mx-(mx-vb.x)*f;vb.y=my-(my-vb.y)*f;setVB();},{passive:false});
var drag=null;
svg.addEventListener('mousedown',function(ev){drag={x:ev.clientX,y:ev.clientY,vx:vb.x,vy:vb.y,moved:false};});
window.addEventListener('mousemove',function(ev){if(!drag)return;var r=svg.getBoundingClientRect();
 var dx=ev.clientX-drag.x,dy=ev.clientY-drag.y;if(Math.abs(dx)+Math.abs(dy)>3)drag.moved=true;
 vb.x=drag.vx-dx/r.width*vb.w;vb.y=drag.vy-dy/r.height*vb.h;setVB();});
window.addEventListener('mouseup',function(){setTimeout(function(){drag=null;},0);});
function el(tag,text,cls){var e=document.createElement(tag);if(text!==undefined&&text!==null)e.textContent=text;
 if(cls)e.className=cls;return e;}
function cite(c){var d=el('div');d.appendChild(el('div',c.quote,'quote'));
 d.appendChild(el('div','doc '+c.doc_id+', chunk '+c.chunk_id+', chars '+c.char_start+'-'+c.char_end,'src'));return d;}
function clearSel(){svg.querySelectorAll('.sel').forEach(function(e){e.classList.remove('sel');});}
function showNode(i){var n=data.nodes[i];clearSel();svg.querySelector('.node[data-i="'+i+'"]').classList.add('sel');
 panel.replaceChildren();panel.appendChild(el('h2',n.name));
 panel.appendChild(el('div',n.type+(n.community>=0?' - community '+n.community:'')+' - degree '+n.degree,'src'));
 if(n.aliases.length)panel.appendChild(el('p','Also: '+n.aliases.join('; ')));
 if(n.description)panel.appendChild(el('p',n.description));
 if(n.citation)panel.appendChild(cite(n.citation));
 panel.appendChild(el('h3','Relations'));var any=false;
 data.edges.forEach(function(e){if(e.s!==i&&e.t!==i)return;any=true;var d=el('div');
  d.appendChild(el('strong',e.statement));if(e.citations.length)d.appendChild(cite(e.citations[0]));
  if(e.citations.length>1)d.appendChild(el('div',(e.citations.length-1)+' more source(s)','src'));
  panel.appendChild(d);});
 if(!any)panel.appendChild(el('p','No relations.'));}
function showEdge(k){var e=data.edges[k];clearSel();svg.querySelector('.edge[data-k="'+k+'"]').classList.add('sel');
 panel.replaceChildren();panel.appendChild(el('h2',e.statement));
 panel.appendChild(el('h3',e.citations.length+' citation(s)'));e.citations.forEach(function(c){panel.appendChild(cite(c));});}
svg.querySelectorAll('.node').forEach(function(g){g.addEventListener('click',function(ev){
 if(drag&&drag.moved)return;ev.stopPropagation();showNode(+g.dataset.i);});});
svg.querySelectorAll('.edge').forEach(function(l){l.addEventListener('click',function(ev){
 if(drag&&drag.moved)return;ev.stopPropagation();showEdge(+l.dataset.k);});});
var search=document.getElementById('search'),filter=document.getElementById('community');
function refresh(){var q=search.value.trim().toLowerCase(),c=filter.value;
 svg.querySelectorAll('.node').forEach(function(g){var n=data.nodes[+g.dataset.i];
  var hit=q&&[n.name].concat(n.aliases).some(function(a){return a.toLowerCase().indexOf(q)>=0;});
  g.classList.toggle('hit',!!hit);
  g.classList.toggle('dim',(c!=='all'&&String(n.community)!==c)||(!!q&&!hit));});
 svg.querySelectorAll('.edge').forEach(function(l){var e=data.edges[+l.dataset.k];
  var inside=c==='all'||(String(data.nodes[e.s].community)===c&&String(data.nodes[e.t].community)===c);
  l.classList.toggle('dim',!inside||!!q);});}
search.addEventListener('input',refresh);filter.addEventListener('change',refresh);
document.querySelectorAll('#communities li').forEach(function(li){li.addEventListener('click',function(){
 filter.value=li.dataset.c;refresh();});});
})();
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _script_json(value: object) -> str:
    """JSON that is safe inside a <script> element (no "<", ">" or "&" left as such)."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _component_layout(graph: nx.Graph, seed: int) -> dict[str, tuple[float, float]]:
    """Spring layout of one connected component, in the unit square."""
    if len(graph) == 1:
        return {next(iter(graph)): (0.5, 0.5)}
    raw = nx.spring_layout(graph, seed=seed, iterations=100)
    xs, ys = [p[0] for p in raw.values()], [p[1] for p in raw.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    return {n: ((p[0] - min(xs)) / span, (p[1] - min(ys)) / span) for n, p in raw.items()}


def layout(nodes: Sequence[KGNode], edges: Sequence[KGEdge], seed: int = 0) -> dict[str, tuple[float, float]]:
    """node_id -> (x, y) on the canvas: each connected component laid out by networkx's spring layout (fixed seed)
    in a square cell sized by its number of nodes, the cells packed in rows (largest first, lone nodes last)."""
    graph = nx.Graph()
    graph.add_nodes_from(sorted(n.node_id for n in nodes))
    graph.add_edges_from((e.source, e.target) for e in edges if e.source in graph and e.target in graph)
    if not graph:
        return {}
    components = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: (-len(c), c[0]))
    sides = [math.sqrt(len(c)) for c in components]
    row_width = max(max(sides), math.sqrt(sum(x * x for x in sides)) * math.sqrt(WIDTH / HEIGHT))
    placed: dict[str, tuple[float, float]] = {}
    x = y = row_height = total_w = 0.0
    for members, side in zip(components, sides, strict=True):
        if x > 0 and x + side > row_width:
            x, y, row_height = 0.0, y + row_height, 0.0
        pad = 0.12 * side
        for node, (u, v) in _component_layout(graph.subgraph(members), seed).items():
            placed[node] = (x + pad + u * (side - 2 * pad), y + pad + v * (side - 2 * pad))
        x, row_height = x + side, max(row_height, side)
        total_w = max(total_w, x)
    total_h = y + row_height
    scale = min((WIDTH - 2 * MARGIN) / total_w, (HEIGHT - 2 * MARGIN) / total_h)
    off_x, off_y = (WIDTH - total_w * scale) / 2, (HEIGHT - total_h * scale) / 2
    return {n: (round(off_x + p[0] * scale, 1), round(off_y + p[1] * scale, 1)) for n, p in placed.items()}


def _radius(degree: int) -> float:
    return round(4 + 2.2 * math.sqrt(degree), 1)


def _colour(community: int) -> str:
    return PALETTE[community % len(PALETTE)] if community >= 0 else NO_COMMUNITY


def _svg(nodes: Sequence[KGNode], edges: Sequence[KGEdge], pos: dict[str, tuple[float, float]], index) -> str:
    many = len(nodes) > MANY_NODES
    label_degree = sorted((n.degree for n in nodes), reverse=True)[MANY_NODES - 1] if many else 0
    names = {n.node_id: n.name for n in nodes}
    parts = [
        f'<svg id="graph" class="{"many" if many else ""}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg" role="img">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#999"/></marker></defs><g id="edges">',
    ]
    by_id = {n.node_id: n for n in nodes}
    for k, e in enumerate(edges):
        (x1, y1), (x2, y2) = pos[e.source], pos[e.target]
        length = math.hypot(x2 - x1, y2 - y1) or 1.0
        cut = _radius(by_id[e.target].degree) + 2
        x2, y2 = round(x2 - (x2 - x1) / length * cut, 1), round(y2 - (y2 - y1) / length * cut, 1)
        width = round(min(1 + e.weight * 0.5, 5), 1)
        parts.append(
            f'<line class="edge" data-k="{k}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke-width="{width}" '
            f'marker-end="url(#arrow)"><title>{_esc(edge_statement(e, names))}</title></line>'
        )
    parts.append('</g><g id="nodes">')
    for n in nodes:
        x, y = pos[n.node_id]
        r = _radius(n.degree)
        minor = " minor" if many and n.degree < label_degree else ""
        parts.append(
            f'<g class="node{minor}" data-i="{index[n.node_id]}" data-c="{n.community}">'
            f'<circle cx="{x}" cy="{y}" r="{r}" fill="{_colour(n.community)}"/>'
            f'<text x="{round(x + r + 2, 1)}" y="{round(y + 3, 1)}">{_esc(n.name)}</text>'
            f"<title>{_esc(n.name)} ({_esc(n.type)})</title></g>"
        )
    parts.append("</g></svg>")
    return "\n".join(parts)


def _communities_html(communities: Sequence[KGCommunity], nodes: Sequence[KGNode]) -> str:
    if not communities:
        return "<p>No communities (no two entities are related).</p>"
    names = {n.node_id: n.name for n in nodes}
    items = []
    for c in communities:
        cites = "".join(
            f'<div class="quote">{_esc(x.quote)}</div><div class="src">doc {_esc(x.doc_id)}, chunk '
            f"{_esc(x.chunk_id)}, chars {x.char_start}-{x.char_end}</div>"
            for x in c.citations[:3]
        )
        members = ", ".join(names.get(m, m) for m in c.node_ids[:12]) + (" ..." if len(c.node_ids) > 12 else "")
        items.append(
            f'<li data-c="{c.community_id}"><strong style="color:{_colour(c.community_id)}">#{c.community_id} '
            f'{_esc(c.title)}</strong> <span class="src">({len(c.node_ids)} entities, {_esc(c.method)})</span>'
            f'<div>{_esc(c.summary)}</div><div class="src">{_esc(members)}</div>{cites}</li>'
        )
    return '<ol id="communities">' + "".join(items) + "</ol>"


def _data(nodes: Sequence[KGNode], edges: Sequence[KGEdge], index: dict[str, int]) -> dict:
    names = {n.node_id: n.name for n in nodes}
    cite_keys = ("quote", "doc_id", "chunk_id", "char_start", "char_end")
    return {
        "nodes": [
            {
                "name": n.name,
                "type": n.type,
                "aliases": n.aliases,
                "description": n.description,
                "community": n.community,
                "degree": n.degree,
                "citation": n.citation.model_dump(include=set(cite_keys)) if n.citation else None,
            }
            for n in nodes
        ],
        "edges": [
            {
                "s": index[e.source],
                "t": index[e.target],
                "statement": edge_statement(e, names),
                "citations": [c.model_dump(include=set(cite_keys)) for c in e.citations],
            }
            for e in edges
        ],
    }


def write_graph_html(
    nodes: Sequence[KGNode], edges: Sequence[KGEdge], communities: Sequence[KGCommunity], path: Path, title: str
) -> Path:
    """Write the interactive graph view to ``path`` (one HTML file, works offline); edges whose endpoints are not
    among ``nodes`` are left out."""
    index = {n.node_id: i for i, n in enumerate(nodes)}
    edges = [e for e in edges if e.source in index and e.target in index and e.source != e.target]
    pos = layout(nodes, edges)
    options = "".join(
        f'<option value="{c.community_id}">#{c.community_id} {_esc(c.title)} ({len(c.node_ids)})</option>'
        for c in communities
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<style>{_CSS}</style></head><body>
<div id="main"><div id="bar"><h1>{_esc(title)}</h1>
<span class="src">{len(nodes)} entities, {len(edges)} relations, {len(communities)} communities</span>
<input id="search" type="search" placeholder="search names">
<select id="community"><option value="all">all communities</option>{options}</select>
<span class="src">wheel: zoom, drag: pan, click: details</span></div>
{_svg(nodes, edges, pos, index)}</div>
<div id="side"><div id="panel"><p>Click an entity or a relation to see its sources.</p></div>
<h2>Communities</h2>{_communities_html(communities, nodes)}</div>
<script type="application/json" id="kg-data">{_script_json(_data(nodes, edges, index))}</script>
<script>{_JS.replace("__W__", str(WIDTH)).replace("__H__", str(HEIGHT))}</script>
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
