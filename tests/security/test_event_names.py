"""Socket.IO event names that are not strings get an `unknown_event` error ack, not a crash."""


def test_dict_event_name_gets_unknown_event(room):
    t = room.tablet("attendee")
    ack = t.emit({"a": 1}, {}, callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "unknown_event", ack
    ack = t.emit(["x"], {}, callback=True)
    assert ack["error"]["code"] == "unknown_event", ack
