// The console's map, drawn in SVG without any tile service (the machines are offline):
// prefecture-level cities from the bundled map/cities.json (generated from the offline
// gazetteer, WGS-84), a graticule, customers' sites, technicians and routes. Equirectangular
// projection scaled by cos(35°), which keeps China's shape; wheel zooms, drag pans.

import { el } from "./api.js";
import { t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const K = 10; // projected units per degree of latitude
const COS = Math.cos((35 * Math.PI) / 180);
const CHINA = { west: 73, east: 135.5, south: 17.5, north: 54 };

export function project(longitude, latitude) {
  return [(longitude - CHINA.west) * K * COS, (CHINA.north - latitude) * K];
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

let citiesPromise = null;

export function loadCities() {
  if (!citiesPromise) {
    citiesPromise = fetch("/static/map/cities.json")
      .then((r) => r.json())
      .then((data) => data.cities.map(([adcode, name, province, longitude, latitude]) =>
        ({ adcode, name, province, longitude, latitude })))
      .catch(() => []);
  }
  return citiesPromise;
}

export class MapView {
  constructor(container, { onSelect } = {}) {
    this.container = container;
    this.onSelect = onSelect;
    this.data = { sites: [], technicians: [], routes: [], plan: [] };
    this.cities = [];
    this.root = svg("svg", { class: "map", role: "img", "aria-label": t("map.title"),
      preserveAspectRatio: "xMidYMid meet", "data-testid": "map" });
    this.layers = {};
    for (const name of ["graticule", "cities", "routes", "plan", "sites", "technicians"]) {
      this.layers[name] = svg("g", { class: `layer-${name}` });
      this.root.append(this.layers[name]);
    }
    container.append(this.root);
    const [x0, y0] = project(CHINA.west, CHINA.north);
    const [x1, y1] = project(CHINA.east, CHINA.south);
    this.view = { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
    this.fitted = false;
    this.interact();
    loadCities().then((cities) => {
      this.cities = cities;
      this.draw();
    });
    this.setView(this.view);
  }

  // -- view ------------------------------------------------------------------------------

  setView(view) {
    this.view = view;
    this.root.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
    this.draw();
  }

  china() {
    const [x0, y0] = project(CHINA.west, CHINA.north);
    const [x1, y1] = project(CHINA.east, CHINA.south);
    this.setView({ x: x0, y: y0, w: x1 - x0, h: y1 - y0 });
  }

  // Zoom to what is on the map (sites, technicians), with a margin.
  fit() {
    const points = [...this.data.sites, ...this.data.technicians]
      .filter((p) => Number.isFinite(p.latitude) && Number.isFinite(p.longitude))
      .map((p) => project(p.longitude, p.latitude));
    if (!points.length) {
      this.china();
      return;
    }
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    let w = Math.max(...xs) - Math.min(...xs);
    let h = Math.max(...ys) - Math.min(...ys);
    const cx = (Math.max(...xs) + Math.min(...xs)) / 2;
    const cy = (Math.max(...ys) + Math.min(...ys)) / 2;
    w = Math.max(w * 1.4, 12);
    h = Math.max(h * 1.4, 9);
    const box = this.root.getBoundingClientRect();
    const aspect = box.width && box.height ? box.width / box.height : 4 / 3;
    if (w / h < aspect) w = h * aspect;
    else h = w / aspect;
    this.setView({ x: cx - w / 2, y: cy - h / 2, w, h });
  }

  zoom(factor, cx, cy) {
    const v = this.view;
    const x = cx ?? v.x + v.w / 2;
    const y = cy ?? v.y + v.h / 2;
    const w = Math.min(Math.max(v.w * factor, 0.5), 2000);
    const h = (v.h * w) / v.w;
    this.setView({ x: x - ((x - v.x) * w) / v.w, y: y - ((y - v.y) * h) / v.h, w, h });
  }

  toViewBox(clientX, clientY) {
    const box = this.root.getBoundingClientRect();
    const scale = Math.max(this.view.w / box.width, this.view.h / box.height);
    const offsetX = (box.width * scale - this.view.w) / 2;
    const offsetY = (box.height * scale - this.view.h) / 2;
    return [this.view.x + (clientX - box.left) * scale - offsetX, this.view.y + (clientY - box.top) * scale - offsetY];
  }

  interact() {
    this.root.addEventListener("wheel", (event) => {
      event.preventDefault();
      const [x, y] = this.toViewBox(event.clientX, event.clientY);
      this.zoom(event.deltaY > 0 ? 1.25 : 0.8, x, y);
    }, { passive: false });
    let drag = null;
    this.root.addEventListener("pointerdown", (event) => {
      if (event.target.closest("[data-select]")) return;
      drag = { x: event.clientX, y: event.clientY, view: { ...this.view } };
      this.root.setPointerCapture(event.pointerId);
    });
    this.root.addEventListener("pointermove", (event) => {
      if (!drag) return;
      const box = this.root.getBoundingClientRect();
      const scale = Math.max(drag.view.w / box.width, drag.view.h / box.height);
      this.setView({ ...drag.view, x: drag.view.x - (event.clientX - drag.x) * scale,
        y: drag.view.y - (event.clientY - drag.y) * scale });
    });
    const end = () => { drag = null; };
    this.root.addEventListener("pointerup", end);
    this.root.addEventListener("pointercancel", end);
  }

  // -- data ------------------------------------------------------------------------------

  // sites: [{site_id, name, customer, latitude, longitude, tickets: [row], state}],
  // technicians: [{technician_id, name, latitude, longitude, open_visits}],
  // routes: [{technician_id, from: [lat, lon], to: [lat, lon], ticket_id, state}],
  // plan: [{technician_id, points: [[lat, lon], ...]}]
  setData(data) {
    this.data = { ...this.data, ...data };
    if (!this.fitted && (this.data.sites.length || this.data.technicians.length)) {
      this.fitted = true;
      this.fit();
      return;
    }
    this.draw();
  }

  // -- drawing ---------------------------------------------------------------------------

  draw() {
    const unit = this.view.w / 100; // symbol sizes follow the zoom: about 1% of the width
    this.drawGraticule(unit);
    this.drawCities(unit);
    this.drawRoutes(unit);
    this.drawSites(unit);
    this.drawTechnicians(unit);
  }

  drawGraticule(unit) {
    const layer = this.layers.graticule;
    layer.replaceChildren();
    for (let lon = 75; lon <= 135; lon += 5) {
      const [x0, y0] = project(lon, CHINA.north);
      const [x1, y1] = project(lon, CHINA.south);
      layer.append(svg("line", { x1: x0, y1: y0, x2: x1, y2: y1 }));
      layer.append(svg("text", { x: x0 + unit * 0.3, y: y0 + unit * 1.6, "font-size": unit * 1.2,
        text: `${lon}°E` }));
    }
    for (let lat = 20; lat <= 50; lat += 5) {
      const [x0, y0] = project(CHINA.west, lat);
      const [x1, y1] = project(CHINA.east, lat);
      layer.append(svg("line", { x1: x0, y1: y0, x2: x1, y2: y1 }));
      layer.append(svg("text", { x: x0 + unit * 0.3, y: y0 - unit * 0.3, "font-size": unit * 1.2, text: `${lat}°N` }));
    }
  }

  drawCities(unit) {
    const layer = this.layers.cities;
    layer.replaceChildren();
    const labels = this.view.w < 60; // names once zoomed in to a region
    const { x, y, w, h } = this.view;
    for (const city of this.cities) {
      const [cx, cy] = project(city.longitude, city.latitude);
      if (cx < x - w * 0.1 || cx > x + w * 1.1 || cy < y - h * 0.1 || cy > y + h * 1.1) continue;
      const dot = svg("circle", { cx, cy, r: unit * 0.35 });
      dot.append(svg("title", { text: `${city.name}（${city.province}）` }));
      layer.append(dot);
      if (labels) {
        layer.append(svg("text", { x: cx + unit * 0.6, y: cy + unit * 0.4, "font-size": unit * 1.3,
          text: city.name }));
      }
    }
  }

  drawRoutes(unit) {
    const layer = this.layers.routes;
    layer.replaceChildren();
    for (const route of this.data.routes) {
      const [x1, y1] = project(route.from[1], route.from[0]);
      const [x2, y2] = project(route.to[1], route.to[0]);
      const line = svg("line", { x1, y1, x2, y2, class: `route ${route.state || ""}`, "stroke-width": unit * 0.3,
        "stroke-dasharray": `${unit} ${unit * 0.6}`, "data-testid": `route-${route.ticket_id}` });
      line.append(svg("title", { text: `${route.technician_id} → ${route.ticket_id}` }));
      layer.append(line);
    }
    const plan = this.layers.plan;
    plan.replaceChildren();
    for (const route of this.data.plan) {
      const points = route.points.map(([lat, lon]) => project(lon, lat).join(",")).join(" ");
      const line = svg("polyline", { points, class: "plan", "stroke-width": unit * 0.35,
        "data-testid": `plan-${route.technician_id}` });
      line.append(svg("title", { text: `${route.technician_id}: ${route.tickets.join(" → ")}` }));
      plan.append(line);
    }
  }

  drawSites(unit) {
    const layer = this.layers.sites;
    layer.replaceChildren();
    const size = unit * 1.3;
    for (const site of this.data.sites) {
      if (!Number.isFinite(site.latitude) || !Number.isFinite(site.longitude)) continue;
      const [cx, cy] = project(site.longitude, site.latitude);
      const open = site.tickets?.length || 0;
      const group = svg("g", { class: `site ${site.state || ""} ${open ? "open" : ""}`,
        "data-testid": `site-${site.site_id}`, "data-select": site.tickets?.[0]?.ticket_id || "" });
      group.append(svg("rect", { x: cx - size / 2, y: cy - size / 2, width: size, height: size,
        rx: size * 0.15 }));
      if (open) {
        group.append(svg("text", { x: cx, y: cy + size * 0.32, "font-size": size * 0.85, class: "count",
          "text-anchor": "middle", text: String(open) }));
      }
      group.append(svg("text", { x: cx + size * 0.8, y: cy - size * 0.3, "font-size": unit * 1.3, class: "label",
        text: site.name }));
      group.append(svg("title", { text: `${site.customer || ""} ${site.name}\n${(site.tickets || [])
        .map((r) => `${r.ticket_id} ${r.summary}`).join("\n")}` }));
      if (site.tickets?.length && this.onSelect) {
        group.addEventListener("click", () => this.onSelect(site.tickets[0].ticket_id));
      }
      layer.append(group);
    }
  }

  drawTechnicians(unit) {
    const layer = this.layers.technicians;
    layer.replaceChildren();
    const r = unit * 0.8;
    for (const tech of this.data.technicians) {
      if (!Number.isFinite(tech.latitude) || !Number.isFinite(tech.longitude)) continue;
      const [cx, cy] = project(tech.longitude, tech.latitude);
      const group = svg("g", { class: `technician ${tech.open_visits?.length ? "busy" : "free"}`,
        "data-testid": `tech-${tech.technician_id}` });
      group.append(svg("path", { d: `M ${cx} ${cy - r * 1.3} L ${cx + r} ${cy + r * 0.8} L ${cx - r} ${cy + r * 0.8} Z` }));
      group.append(svg("text", { x: cx + r * 1.3, y: cy + r * 2.2, "font-size": unit * 1.3, class: "label",
        text: tech.name || tech.technician_id }));
      group.append(svg("title", { text: `${tech.name || ""} (${tech.technician_id})\n${(tech.skills || []).join(", ")}`
        + `${tech.last_seen ? `\n${tech.last_seen}` : ""}` }));
      layer.append(group);
    }
  }
}

// The map's legend and buttons.
export function mapControls(map, { onPlan } = {}) {
  const button = (key, testid, onclick) => el("button", { type: "button", class: "small",
    dataset: { i18n: key, testid }, onclick }, t(key));
  return el("div", { class: "map-controls" },
    el("button", { type: "button", class: "small", onclick: () => map.zoom(0.7), "aria-label": "zoom in" }, "+"),
    el("button", { type: "button", class: "small", onclick: () => map.zoom(1.4), "aria-label": "zoom out" }, "−"),
    button("map.fit", "map-fit", () => map.fit()),
    button("map.china", "map-china", () => map.china()),
    onPlan ? button("map.plan", "map-plan", onPlan) : null,
    el("span", { class: "legend" },
      el("i", { class: "key city" }), el("span", { dataset: { i18n: "map.legend.city" } }, t("map.legend.city")),
      el("i", { class: "key site" }), el("span", { dataset: { i18n: "map.legend.site" } }, t("map.legend.site")),
      el("i", { class: "key technician" }),
      el("span", { dataset: { i18n: "map.legend.technician" } }, t("map.legend.technician")),
      el("i", { class: "key route" }), el("span", { dataset: { i18n: "map.legend.route" } }, t("map.legend.route")),
      el("i", { class: "key plan" }), el("span", { dataset: { i18n: "map.legend.plan" } }, t("map.legend.plan"))));
}
