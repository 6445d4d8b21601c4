"""``streamlit run app.py`` from a checkout: the page itself ships in :mod:`perfkit.dashboard`."""

import runpy

from perfkit.dashboard import SCRIPT

runpy.run_path(str(SCRIPT), run_name="__main__")
