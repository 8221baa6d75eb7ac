"""The web UI's parts beside ``app.py``: what the chat shows (``view``), the sidebar's and library's actions
(``library``), and the trace panels drawn in Streamlit (``panels``); ``agents`` and ``retrieval`` never
import this package, so they load without Streamlit or pandas."""
