"""Helpers of the Gradio app (``app.py``): degradation-lab controls, Report -> components, runtime glue.

Nothing here holds model logic; it turns the sliders into a degradation spec and a
:class:`forensic.report.Report` into what the page shows. ``forensic`` never imports this package.
"""
