"""Opt-in local web page (config section ``web``; needs the ``[web]`` extra).

Only :mod:`edge.web.config` is imported by the runtime without the extra.
"""
