"""The stall rule of stack/progress.py, with the offsets it reads given by the test
(the same rule on the real stack: tests/reliability/test_stalls.py)."""

from __future__ import annotations

from confluent_kafka import KafkaException

from stack import progress

STAGE = progress.flink_stage()
SINK = progress.sink_stage("serving-tables-sink", ["hashtag_counts"])


class ScriptedWatch(progress.Watch):
    """A Watch whose committed and end offsets, and whether a record (not only
    transaction markers) waits, are set by the test."""

    def __init__(self, stall_after: float = 45):
        super().__init__("127.0.0.1:1", stall_after)
        self.committed, self.ends, self.records_wait, self.probes = {}, {}, True, 0
        self.checkpointed = None  # when the Flink job last completed a checkpoint (None: no job)

    def set(self, committed: int, end: int) -> None:
        self.committed, self.ends = {("tweets", 0): committed}, {("tweets", 0): end}

    def _offsets(self, stage):
        if self.committed is None:
            raise KafkaException("broker down")
        return dict(self.committed), dict(self.ends)

    def _any_record_waits(self, committed, ends):
        self.probes += 1
        return self.records_wait

    def _job_progressed_at(self, stage):
        return self.checkpointed if stage.flink_url else None


def test_nothing_waiting_is_idle_however_long():
    w = ScriptedWatch()
    w.set(10, 10)
    assert w.check(STAGE, now=0).state == "idle"
    assert w.check(STAGE, now=1000).state == "idle"


def test_waiting_and_moving_is_moving():
    w = ScriptedWatch()
    w.set(10, 500)
    w.check(STAGE, now=0)
    for t in range(1, 200):  # one checkpoint per second commits a little more
        w.set(10 + t, 500)
        v = w.check(STAGE, now=t)
        assert (v.state, v.waiting) == ("moving", 500 - (10 + t))


def test_waiting_without_moving_is_stalled_after_the_limit():
    w = ScriptedWatch(stall_after=45)
    w.set(10, 500)
    assert w.check(STAGE, now=0).state == "moving"  # first seen: the benefit of the doubt
    assert w.check(STAGE, now=44.9).state == "moving"
    v = w.check(STAGE, now=45)
    assert (v.state, v.waiting, v.last_moved_at, v.stalled_seconds) == ("stalled", 490, 0, 45)
    assert v.message == "490 posts in tweets wait and nothing has moved for 45 s"
    w.set(11, 500)  # it moves again
    assert w.check(STAGE, now=46).state == "moving"
    assert w.check(STAGE, now=90).state == "moving"
    assert w.check(STAGE, now=91).state == "stalled"


def test_new_posts_arriving_do_not_count_as_progress():
    w = ScriptedWatch(stall_after=45)
    for t in range(0, 60, 5):
        w.set(10, 500 + t * 100)  # the producer writes, the job commits nothing
        v = w.check(STAGE, now=t)
    assert v.state == "stalled"


def test_only_transaction_markers_waiting_is_idle():
    w = ScriptedWatch(stall_after=45)
    w.records_wait = False
    w.set(10, 11)  # one offset behind: the commit marker after the last record read
    for t in range(0, 100, 5):
        assert w.check(SINK, now=t).state == "idle"
    assert w.probes == 1  # the same offsets are not read again


def test_a_broker_that_does_not_answer_is_unknown_not_stalled():
    w = ScriptedWatch()
    w.committed = None
    v = w.check(STAGE, now=0)
    assert (v.state, v.message) == ("unknown", "cannot read offsets: broker down")


def test_a_paused_connector_is_paused_not_stalled():
    w = ScriptedWatch(stall_after=45)
    w.set(10, 20)
    w.check(SINK, now=0)
    v = w.check(SINK, now=50)
    assert v.state == "stalled" and v.connector == "serving-tables-sink"
    assert v.paused_if("RUNNING").state == "stalled"
    assert v.paused_if("PAUSED").state == "paused"
    assert v.message == "10 count updates wait: connector serving-tables-sink is PAUSED"


def test_nothing_waiting_but_no_checkpoint_for_the_limit_is_a_stalled_job():
    # an unaligned checkpoint committed the offsets of posts still between the
    # job's tasks; the job then fails and restarts from it again and again
    w = ScriptedWatch(stall_after=45)
    w.set(500, 500)
    w.checkpointed = 100
    assert w.check(STAGE, now=144.9).state == "idle"
    v = w.check(STAGE, now=145)
    assert (v.state, v.waiting, v.last_moved_at, v.stalled_seconds) == ("stalled", 0, 100, 45)
    assert v.message == "the job has completed no checkpoint for 45 s (posts it read may wait between its tasks)"
    w.checkpointed = 150  # a checkpoint completes again
    assert w.check(STAGE, now=151).state == "idle"


def test_the_checkpoint_rule_is_the_flink_job_s_only():
    w = ScriptedWatch(stall_after=45)
    w.set(500, 500)
    w.checkpointed = 0
    assert w.check(SINK, now=1000).state == "idle"
    w.checkpointed = None  # no live job (between roll-outs): nothing to judge
    assert w.check(STAGE, now=1000).state == "idle"
