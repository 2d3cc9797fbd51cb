"""The local web playground (``matcalc serve``): a page and a JSON API over the engine.

Needs the ``web`` extra (``pip install "matcalc-symbolic[web]"``): Starlette and uvicorn.
"""
