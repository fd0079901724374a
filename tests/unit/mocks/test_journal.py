from mocks.journal import Journal, fingerprint, protocol_headers, redact


def test_secrets_become_fingerprints() -> None:
    secret = "s" * 180
    clean = redact({"appkey": "k" * 36, "appsecret": secret, "nested": {"token": "abc"}})
    assert clean["appkey"] == "k" * 36
    assert clean["appsecret"] == fingerprint(secret)
    assert secret not in str(clean)
    assert clean["nested"]["token"] == fingerprint("abc")


def test_bearer_keeps_its_scheme_only() -> None:
    headers = protocol_headers(
        [("Authorization", "Bearer eyJhbGciOi.secret"), ("User-Agent", "x"), ("tr_id", "T")]
    )
    assert headers == {"authorization": f"Bearer {fingerprint('eyJhbGciOi.secret')}", "tr_id": "T"}


def test_query_filters_and_sequence() -> None:
    journal = Journal()
    for i, path in enumerate(["/a", "/b", "/a"]):
        entry = journal.open(at=float(i), method="GET", path=path, tr_id=None, headers={})
        entry.code = "X" if path == "/a" else "Y"
    assert [e.seq for e in journal.entries(path="/a")] == [1, 3]
    assert [e.seq for e in journal.entries(since=1)] == [2, 3]
    assert [e.seq for e in journal.entries(code="Y")] == [2]


def test_bounded_journal_counts_what_it_dropped() -> None:
    journal = Journal(limit=3)
    for i in range(5):
        journal.open(at=float(i), method="GET", path="/", tr_id=None, headers={})
    assert [e.seq for e in journal.entries()] == [3, 4, 5]
    assert journal.dropped == 2
    assert [e.seq for e in journal.entries(since=1)] == [3, 4, 5]
    assert [e.seq for e in journal.entries(since=3, limit=1)] == [4]
    assert journal.entries(since=5) == []
