"""The calendar sessions cache (tokenclear.market.calendars): the library's sessions, written once and read
back; a damaged file or an unwritable folder is only a slower run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tokenclear.market import calendars


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOKENCLEAR_CACHE_DIR", str(tmp_path / "cache"))
    calendars.sessions.cache_clear()
    yield tmp_path / "cache"
    calendars.sessions.cache_clear()


def test_sessions_are_the_librarys_and_are_cached(cache: Path) -> None:
    import exchange_calendars as xcals

    days = calendars.sessions("XNYS")
    library = xcals.get_calendar("XNYS", start="1985-01-01").sessions.values.astype("datetime64[D]")
    assert np.array_equal(days, library)
    assert np.datetime64("2020-04-10") not in days  # Good Friday
    path = calendars.cache_file("XNYS")
    assert path.parent == cache and np.array_equal(np.load(path), library)
    calendars.sessions.cache_clear()
    np.save(path, library[:3])  # whatever the file holds is what a later run reads
    assert calendars.sessions("XNYS").size == 3


def test_a_damaged_cache_file_is_rebuilt(cache: Path) -> None:
    path = calendars.cache_file("24/7")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npy file")
    (cache / "sessions-24_7-0.0.1-2000-01-01.npy").write_bytes(b"old")  # an earlier version's: pruned
    days = calendars.sessions("24/7")
    assert np.all(np.diff(days) == np.timedelta64(1, "D"))
    assert np.array_equal(np.load(path), days)
    assert sorted(one.name for one in cache.iterdir()) == [path.name]


def test_no_cache_when_the_setting_is_empty_or_the_folder_unwritable(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENCLEAR_CACHE_DIR", "")
    calendars.sessions.cache_clear()
    assert calendars.cache_file("XNYS") is None and calendars.sessions("XNYS").size > 10_000
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("TOKENCLEAR_CACHE_DIR", str(blocker / "below"))  # below a file: mkdir fails
    calendars.sessions.cache_clear()
    assert calendars.sessions("XNYS").size > 10_000
    calendars.sessions.cache_clear()
