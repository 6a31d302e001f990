"""An event literally named "*" is an unknown event, not a call of the catch-all with shifted arguments."""


def test_star_event_name_gets_unknown_event(room):
    c = room.tablet("attendee")
    for args in (({"a": 1},), (), ([1, 2],)):
        ack = c.emit("*", *args, callback=True)
        assert ack["ok"] is False and ack["error"]["code"] == "unknown_event", ack
    assert c.is_connected()
