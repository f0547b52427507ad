"""The Streamlit dashboard's pages (streamlit_app.py is the entry point): `data` (cached reads),
`common` (labels, KPI cards, formats), `backtest` and `research` (the tabs of each run mode)."""
