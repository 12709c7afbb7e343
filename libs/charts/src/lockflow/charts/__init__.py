"""The stages' evidence as Vega-Lite chart specs, defined once for the web UI and every report.

`catalog.charts_of` turns what a run stores (the analytics result, findings, scores, insights, a
fix preview) into `Chart`s; `render` draws a spec as SVG or PNG without a browser (vl-convert).
"""
