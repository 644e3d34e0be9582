#!/usr/bin/env python3
# Generates the dashboards of this folder (prometheus/*.json, influxdb/*.json): edit here and
# run `python3 dashboards/grafana/generate.py`, or edit the JSON (e.g. exported from Grafana).
# tests/tests/dashboards.rs checks whatever is in the JSON files.
import json, os, sys
OUT = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}
IDS = {"type": "influxdb", "uid": "${datasource}"}

def panel(pid, title, targets, x, y, w=12, h=8, kind="timeseries", unit=None, thresholds=None, desc=None, ds=DS, extra=None):
    fc = {"defaults": {"custom": {}}, "overrides": []}
    if unit: fc["defaults"]["unit"] = unit
    if thresholds:
        fc["defaults"]["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in thresholds]}
        if kind == "timeseries":
            fc["defaults"]["custom"]["thresholdsStyle"] = {"mode": "line+area"}
    p = {"id": pid, "type": kind, "title": title, "datasource": ds, "gridPos": {"x": x, "y": y, "w": w, "h": h},
         "fieldConfig": fc, "options": {}, "targets": []}
    if desc: p["description"] = desc
    for i, t in enumerate(targets):
        expr, legend = t
        if ds is DS:
            p["targets"].append({"refId": chr(65 + i), "datasource": ds, "expr": expr, "legendFormat": legend, "range": kind != "table", "instant": kind == "table"})
        else:
            p["targets"].append({"refId": chr(65 + i), "datasource": ds, "query": expr})
    if extra: p.update(extra)
    return p

def dashboard(uid, title, tags, panels, variables, desc):
    return {"uid": uid, "title": title, "description": desc, "tags": tags, "timezone": "browser", "schemaVersion": 39,
            "version": 1, "editable": True, "refresh": "10s", "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": variables}, "annotations": {"list": []}, "panels": panels}

def ds_var(kind):
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": kind, "current": {}, "hide": 0}

def prom_var(name, label, query, multi=True):
    return {"name": name, "label": label, "type": "query", "datasource": DS, "query": {"query": query, "refId": name},
            "definition": query, "refresh": 2, "includeAll": True, "allValue": ".*", "multi": multi, "current": {}, "sort": 1}

S = 'site=~"$site"'
# ---------------- Prometheus-type: site overview -----------------
levels = [
    ("Methane: working faces, upper corners, heading faces, shearers (alarm 1.0 %, power-off 1.5 %)", "working_face|upper_corner|heading_face|shearer", [(1.0, "orange"), (1.5, "red")]),
    ("Methane: return airways of faces and headings (alarm and power-off 1.0 %)", "working_face_return|heading_return", [(1.0, "red")]),
    ("Methane: intake airways and substations (alarm and power-off 0.5 %)", "intake_airway|substation", [(0.5, "red")]),
    ("Methane: main returns (alarm 0.75 %), coal bunkers (1.5 %), drainage roadways (2.5 %)", "main_return|coal_bunker|drainage_roadway", [(0.75, "orange"), (1.5, "red"), (2.5, "dark-red")]),
]
panels = []
y = 0
for i, (title, locs, th) in enumerate(levels):
    panels.append(panel(len(panels) + 1, title, [(f'reading_value{{quantity="ch4", {S}, location=~"{locs}"}}', "{{site}} {{point}} ({{location}})")],
                        (i % 2) * 12, y + (i // 2) * 8, unit="percent", thresholds=th,
                        desc="Levels of AQ 1029 / Coal Mine Safety Regulations (methane_levels.csv); the rules in force may be stricter."))
y += 16
panels.append(panel(len(panels) + 1, "Toxic and flammable gases (CO, H2S, toxic, LEL)", [(f'reading_value{{quantity=~"co|h2s|toxic|lel", {S}}}', "{{site}} {{point}} {{quantity}} ({{location}})")], 0, y, unit="ppm"))
panels.append(panel(len(panels) + 1, "Oxygen and carbon dioxide (% vol)", [(f'reading_value{{quantity=~"o2|co2", {S}}}', "{{site}} {{point}} {{quantity}}")], 12, y, unit="percent", thresholds=[(18.0, "red")]))
y += 8
panels.append(panel(len(panels) + 1, "Interlocks bypassed or tripped, feeds cut (1 = true)", [(f'reading_value{{quantity=~"interlock_bypass|interlock_trip|power_cut|operation_active", {S}}}', "{{site}} {{point}} {{quantity}}")], 0, y, extra={"fieldConfig": {"defaults": {"custom": {"drawStyle": "line", "lineInterpolation": "stepAfter"}, "min": 0, "max": 1}, "overrides": []}}))
panels.append(panel(len(panels) + 1, "Readings of bad quality or under calibration, by site", [(f'count by (site) (reading_quality{{{S}}} >= 2)', "{{site}}")], 12, y, desc="quality: 0 good, 1 uncertain, 2 bad, 3 calibration"))
y += 8
panels.append(panel(len(panels) + 1, "Process values (temperature, pressure, level, water level, rainfall, displacement)", [(f'reading_value{{quantity=~"temperature|pressure|level|water_level|rainfall|displacement|flow|wind_speed", {S}}}', "{{site}} {{point}} {{quantity}}")], 0, y))
panels.append(panel(len(panels) + 1, "Vehicle speed (km/h)", [(f'reading_speed_kmh{{{S}}}', "{{site}} {{point}}")], 12, y, unit="velocitykmh", thresholds=[(80, "red")]))
y += 8
panels.append(panel(len(panels) + 1, "Latest value of every point (last hour)", [(f'last_over_time(reading_value{{{S}}}[1h])', "")], 0, y, w=24, h=10, kind="table",
                    extra={"transformations": [{"id": "labelsToFields", "options": {}}]}))
site_overview = dashboard("hrs-site-overview", "HRS / Site overview", ["hrs", "sites"], panels,
                          [ds_var("prometheus"), prom_var("site", "Site", "label_values(reading_value, site)")],
                          "Readings written by the gateway's time-series writer (VictoriaMetrics names them reading_<field>), per site.")

# ---------------- Prometheus-type: incidents -----------------
panels = []
panels.append(panel(1, "Open incidents by severity", [("sum by (severity) (hrs_incidents_open)", "{{severity}}")], 0, 0, kind="stat", thresholds=[(1, "orange")]))
panels.append(panel(2, "Critical incidents open", [('sum(hrs_incidents_open{severity="critical"})', "critical")], 12, 0, kind="stat", thresholds=[(1, "red")]))
panels.append(panel(3, "Incident events per minute, by event", [("sum by (event) (rate(hrs_incident_events_total[$__rate_interval])) * 60", "{{event}}")], 0, 8, unit="short"))
panels.append(panel(4, "Incidents raised in the last hour", [('sum(increase(hrs_incident_events_total{event="raised"}[1h]))', "raised")], 12, 8, kind="stat"))
panels.append(panel(5, "Open incidents by severity over time", [("sum by (severity) (hrs_incidents_open)", "{{severity}}")], 0, 16, w=24))
panels.append(panel(6, "Store write latency p99 (incident events)", [("histogram_quantile(0.99, sum by (le) (rate(hrs_store_write_seconds_bucket[$__rate_interval])))", "p99")], 0, 24, unit="s"))
panels.append(panel(7, "Incident events published over MQTT per minute", [("sum by (kind) (rate(hrs_mqtt_published_total[$__rate_interval])) * 60", "{{kind}}")], 12, 24))
incidents = dashboard("hrs-incidents", "HRS / Incidents", ["hrs", "incidents"], panels, [ds_var("prometheus")],
                      "Incidents of all sites from the gateway's metrics: what is open, and how fast events come.")

# ---------------- Prometheus-type: health -----------------
panels = []
P = lambda *a, **k: panels.append(panel(len(panels) + 1, *a, **k))
P("Scrape targets up (gateway and agents)", [('up{job=~"hrs-.*"}', "{{job}} {{instance}}")], 0, 0, kind="stat", thresholds=[(1, "green")], extra={"fieldConfig": {"defaults": {"thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}}, "overrides": []}})
P("Gateway: up, broker connection, agents online", [("hrs_gateway_up", "up {{instance}}"), ("hrs_mqtt_connected", "broker {{instance}}"), ("hrs_agents_online", "agents online {{instance}}")], 12, 0, kind="stat")
P("Readings taken per second", [("sum(rate(hrs_readings_taken_total[$__rate_interval]))", "taken")], 0, 8, unit="ops")
P("Readings refused per second, by reason", [("sum by (reason) (rate(hrs_readings_refused_total[$__rate_interval]))", "{{reason}}")], 12, 8, unit="ops")
P("Duplicate batches and seq gaps per minute", [("sum(rate(hrs_batches_duplicate_total[$__rate_interval])) * 60", "duplicates"), ("sum(rate(hrs_seq_gaps_total[$__rate_interval])) * 60", "gaps"), ("sum(rate(hrs_seq_gaps_filled_total[$__rate_interval])) * 60", "gaps filled")], 0, 16)
P("Message processing latency (p50, p99)", [("histogram_quantile(0.5, sum by (le) (rate(hrs_message_processing_seconds_bucket[$__rate_interval])))", "p50"), ("histogram_quantile(0.99, sum by (le) (rate(hrs_message_processing_seconds_bucket[$__rate_interval])))", "p99")], 12, 16, unit="s")
P("Time series: points written, spooled, dropped per second", [("sum(rate(hrs_timeseries_points_written_total[$__rate_interval]))", "written"), ("sum(rate(hrs_timeseries_points_spooled_total[$__rate_interval]))", "spooled"), ("sum by (reason) (rate(hrs_timeseries_points_dropped_total[$__rate_interval]))", "dropped {{reason}}")], 0, 24, unit="ops")
P("Time series: database reachable, spool bytes, points in memory", [("hrs_timeseries_up", "database up"), ("hrs_timeseries_spool_bytes", "spool bytes"), ("hrs_timeseries_memory_points", "points in memory")], 12, 24)
P("Time series: write latency p99", [("histogram_quantile(0.99, sum by (le) (rate(hrs_timeseries_write_seconds_bucket[$__rate_interval])))", "p99")], 0, 32, unit="s")
P("Dead letters per minute", [("sum(rate(hrs_dead_letters_total[$__rate_interval])) * 60", "dead letters")], 12, 32)
P("Agents: broker connection and device links", [("hrs_agent_mqtt_connected", "broker {{instance}}"), ("hrs_agent_device_link_up", "{{device}} {{instance}}")], 0, 40, extra={"fieldConfig": {"defaults": {"custom": {"lineInterpolation": "stepAfter"}, "min": 0, "max": 1}, "overrides": []}})
P("Agents: Modbus polls per second by outcome", [("sum by (instance, outcome) (rate(hrs_agent_polls_total[$__rate_interval]))", "{{instance}} {{outcome}}")], 12, 40, unit="ops")
P("Agents: durable buffer (batches waiting)", [("hrs_agent_buffer_batches", "{{instance}}")], 0, 48)
P("Agents: batches published per second, publish latency p99", [("sum by (instance) (rate(hrs_agent_batches_published_total[$__rate_interval]))", "published {{instance}}"), ("histogram_quantile(0.99, sum by (instance, le) (rate(hrs_agent_publish_latency_seconds_bucket[$__rate_interval])))", "p99 {{instance}}")], 12, 48)
health = dashboard("hrs-health", "HRS / Gateway and agents health", ["hrs", "health"], panels, [ds_var("prometheus")],
                   "The gateway's and the edge agents' own metrics (hrs_*), scraped from their /metrics.")

# ---------------- InfluxDB (Flux): site overview -----------------
def flux(flt, agg="mean", keep='["_time", "_value", "site", "point", "location", "quantity"]', field="value"):
    return ('from(bucket: "${bucket}")\n'
            '  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n'
            f'  |> filter(fn: (r) => r._measurement == "reading" and r._field == "{field}")\n'
            '  |> filter(fn: (r) => r.site =~ /^${site:regex}$/)\n'
            f'  |> filter(fn: (r) => {flt})\n'
            f'  |> aggregateWindow(every: v.windowPeriod, fn: {agg}, createEmpty: false)\n'
            f'  |> keep(columns: {keep})')
panels = []
F = lambda *a, **k: panels.append(panel(len(panels) + 1, *a, ds=IDS, **k))
for i, (title, locs, th) in enumerate(levels):
    cond = " or ".join(f'r.location == "{l}"' for l in locs.split("|"))
    F(title, [(flux(f'r.quantity == "ch4" and ({cond})', agg="max"), "")], (i % 2) * 12, (i // 2) * 8, unit="percent", thresholds=th)
F("Toxic and flammable gases (CO, H2S, toxic, LEL)", [(flux('r.quantity == "co" or r.quantity == "h2s" or r.quantity == "toxic" or r.quantity == "lel"', agg="max"), "")], 0, 16, unit="ppm")
F("Oxygen and carbon dioxide (% vol)", [(flux('r.quantity == "o2" or r.quantity == "co2"', agg="min"), "")], 12, 16, unit="percent", thresholds=[(18.0, "red")])
F("Interlocks bypassed or tripped, feeds cut (1 = true)", [(flux('r.quantity == "interlock_bypass" or r.quantity == "interlock_trip" or r.quantity == "power_cut"', agg="last"), "")], 0, 24)
F("Readings of bad quality or under calibration, by site", [('from(bucket: "${bucket}")\n'
  '  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n'
  '  |> filter(fn: (r) => r._measurement == "reading" and r._field == "quality" and r._value >= 2)\n'
  '  |> filter(fn: (r) => r.site =~ /^${site:regex}$/)\n'
  '  |> group(columns: ["site"])\n'
  '  |> aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)', "")], 12, 24, desc="quality: 0 good, 1 uncertain, 2 bad, 3 calibration")
F("Vehicle speed (km/h)", [(flux("true", agg="max", keep='["_time", "_value", "site", "point"]', field="speed_kmh"), "")], 0, 32, unit="velocitykmh", thresholds=[(80, "red")])
F("Latest value of every point", [('from(bucket: "${bucket}")\n'
  '  |> range(start: -1h)\n'
  '  |> filter(fn: (r) => r._measurement == "reading" and r._field == "value")\n'
  '  |> filter(fn: (r) => r.site =~ /^${site:regex}$/)\n'
  '  |> last()\n'
  '  |> keep(columns: ["_time", "_value", "site", "agent", "point", "quantity", "location", "category"])', "")], 12, 32, kind="table")
influx_vars = [ds_var("influxdb"),
               {"name": "bucket", "label": "Bucket", "type": "constant", "query": "hrs", "hide": 2},
               {"name": "site", "label": "Site", "type": "query", "datasource": IDS,
                "query": 'import "influxdata/influxdb/schema"\nschema.tagValues(bucket: "${bucket}", tag: "site", predicate: (r) => r._measurement == "reading")',
                "refresh": 2, "includeAll": True, "allValue": ".*", "multi": True, "current": {}, "sort": 1}]
influx_overview = dashboard("hrs-site-overview-influx", "HRS / Site overview (InfluxDB)", ["hrs", "sites", "influxdb"], panels, influx_vars,
                            "Readings in InfluxDB 2 (measurement reading), with Flux.")

# ---------------- Prometheus-type: operations (the metrics behind alerts.yml) -----------------
panels = []
P = lambda *a, **k: panels.append(panel(len(panels) + 1, *a, **k))
P("Deliveries per minute, by target and outcome", [("sum by (target, outcome) (rate(hrs_deliveries_total[$__rate_interval])) * 60", "{{target}} {{outcome}}")], 0, 0)
P("Oldest delivery still being tried, by target (age)", [("time() - (hrs_delivery_pending_since_seconds > 0)", "{{target}}")], 12, 0, unit="s", thresholds=[(600, "red")], desc="The alert HrsDeliveriesLagging fires past 10 minutes.")
P("Parked deliveries (refused for good, waiting for an operator)", [("hrs_deliveries_parked", "parked {{instance}}")], 0, 8, kind="stat", thresholds=[(1, "orange")])
P("Sites offline, by region (4-digit GB/T 2260 prefix)", [("sum by (region) (hrs_sites_offline)", "offline {{region}}"), ("sum by (region) (hrs_sites)", "known {{region}}")], 12, 8)
P("Incidents not acknowledged, by severity", [("sum by (severity) (hrs_incidents_unacknowledged)", "{{severity}}")], 0, 16)
P("Oldest unacknowledged incident, by severity (age)", [("max by (severity) (hrs_incidents_unacknowledged_oldest_seconds)", "{{severity}}")], 12, 16, unit="s", thresholds=[(300, "red")], desc="The alert HrsCriticalIncidentUnacknowledged fires past 5 minutes for a critical incident.")
P("Shelved and chattering incidents, raises in the last hour", [("hrs_incidents_shelved", "shelved"), ("hrs_chattering_causes", "chattering causes"), ("hrs_incidents_raised_last_hour", "raised in the last hour")], 0, 24)
P("Store errors per minute, by class; records purged past their retention", [("sum by (class) (rate(hrs_store_errors_total[$__rate_interval])) * 60", "errors {{class}}"), ("sum by (what) (hrs_retention_purged_total)", "purged {{what}}")], 12, 24)
P("Gateway: ready, active, version", [("hrs_gateway_ready", "ready {{instance}}"), ("hrs_gateway_active", "active {{instance}}"), ("hrs_build_info", "{{version}}")], 0, 32, kind="stat")
P("Gateway process: memory, CPU, open files", [('process_resident_memory_bytes{job="hrs-gateway"}', "resident bytes"), ('rate(process_cpu_seconds_total{job="hrs-gateway"}[$__rate_interval])', "CPU seconds per second"), ('process_open_fds{job="hrs-gateway"}', "open files")], 12, 32)
operations = dashboard("hrs-operations", "HRS / Operations", ["hrs", "operations"], panels, [ds_var("prometheus")],
                       "What dashboards/prometheus/alerts.yml alerts on: forwarding health, sites offline, unacknowledged, shelved and chattering incidents, store errors, the process.")

os.makedirs(f"{OUT}/prometheus", exist_ok=True)
os.makedirs(f"{OUT}/influxdb", exist_ok=True)
for path, d in [("prometheus/site-overview.json", site_overview), ("prometheus/incidents.json", incidents), ("prometheus/health.json", health), ("prometheus/operations.json", operations), ("influxdb/site-overview.json", influx_overview)]:
    with open(f"{OUT}/{path}", "w") as f:
        json.dump(d, f, indent=2, ensure_ascii=False)
        f.write("\n")
print("ok")
