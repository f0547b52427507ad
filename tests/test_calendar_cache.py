"""The on-disk copy of exchange schedules (orb.sessions): where it lives, and that it is a shortcut only."""

from __future__ import annotations

import pandas as pd
import pandas.testing as pdt

from orb import sessions


def test_the_schedules_follow_orbs_cache_folder_unless_their_own_is_set(tmp_path, monkeypatch):
    monkeypatch.delenv(sessions.CACHE_ENV, raising=False)
    monkeypatch.setenv("ORB_CACHE_DIR", str(tmp_path / "orb"))
    assert sessions._cache_file("XNYS", 2020, 2022).parent == tmp_path / "orb" / "calendars"
    monkeypatch.setenv(sessions.CACHE_ENV, str(tmp_path / "own"))
    assert sessions._cache_file("XNYS", 2020, 2022).parent == tmp_path / "own"
    monkeypatch.setenv(sessions.CACHE_ENV, "")
    assert sessions._cache_file("XNYS", 2020, 2022) is None  # an empty value turns the disk copy off


def test_a_damaged_disk_copy_is_rebuilt_with_the_same_sessions(tmp_path, monkeypatch):
    monkeypatch.setenv(sessions.CACHE_ENV, str(tmp_path))
    built = sessions._years_table("XNYS", 2019, 2020)
    (path,) = tmp_path.glob("XNYS_2019_2020_*.npz")
    pdt.assert_frame_equal(sessions._years_table("XNYS", 2019, 2020), built)  # read back from the disk
    path.write_bytes(b"not an npz file")
    pdt.assert_frame_equal(sessions._years_table("XNYS", 2019, 2020), built)
    assert path.stat().st_size > 100  # rewritten whole
    assert built.loc["2019-11-29", "close"] == pd.Timestamp("2019-11-29 18:00", tz="UTC")  # 13:00 early close
    assert len(built) == 252 + 253
