"""Who may write from the dashboard. With ORB_API_KEY set (the API's key, interfaces.md), launching,
cancelling and deleting need that key typed in the sidebar, as the API's write routes need it in
`X-API-Key`; reading never does. Without a key, writing is open, as on the API's loopback bind."""

from __future__ import annotations

import hmac
import os

import streamlit as st

KEY_ENV = "ORB_API_KEY"
FIELD = "api_key"  # the sidebar field's session-state key


def key_field() -> None:
    """The sidebar's API-key field, drawn only when a key is set."""
    if os.environ.get(KEY_ENV):
        st.sidebar.text_input(
            "API key",
            type="password",
            key=FIELD,
            help=f"This server's {KEY_ENV}: launching, cancelling and deleting need it",
        )


def write_refusal() -> str | None:
    """None when this session may write, else one line saying what to do."""
    expected = os.environ.get(KEY_ENV)
    if not expected:
        return None
    given = st.session_state.get(FIELD) or ""
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    if not given:
        return f"{KEY_ENV} is set on this server: enter that key under API key in the sidebar to write"
    return "The API key in the sidebar is not this server's ORB_API_KEY: correct it to write"
