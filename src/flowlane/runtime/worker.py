"""Workers: claim due jobs from the database and run them, durably.

A worker claims a batch of due jobs with a lease (:class:`~flowlane.store.sql.JobQueue`),
runs the batch's timer and periodic steps in one transaction (group commit; when a step
fails, the batch is run again one step per transaction, so that only the failing job is
retried with backoff), then delivers the batch's emails one by one: check the lease, send
over SMTP, then mark the outbox row sent. A crash anywhere leaves each job either done
(committed) or still claimed, and a claimed job whose lease runs out is claimed again: steps
are never half applied, and an email is sent at least once, twice only when the worker died
(or hung past its lease) between the server's acceptance and the commit (the receiver sees
the same Message-ID). After ``max_attempts`` a job is ``failed``: listed by
``flowlane jobs`` and retried by ``flowlane jobs retry``; a failing step also raises an
incident on its instance.

Steps run with the clock set to the job's due time, as in the simulator: a late worker
gives the same schedule and the same results as a punctual one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from flowlane.core.errors import FlowlaneError, ValidationError
from flowlane.runtime.faults import Faults
from flowlane.runtime.mail import (
    MailMode,
    PermanentDeliveryError,
    Sender,
    SinkSender,
    SmtpSender,
    SmtpSettings,
    TemporaryDeliveryError,
    build_email,
)
from flowlane.runtime.webhooks import WebhookSender, webhook_secret
from flowlane.services.account import Account
from flowlane.services.inbound import mail_domain, reply_address
from flowlane.services.signing import account_secret
from flowlane.store.base import is_conflict
from flowlane.store.records import IncidentRecord, Job, MessageRecord, TimerRecord
from flowlane.store.sql.store import TIMER_KINDS, WEBHOOK_JOB_PREFIX, JobQueue, SqlStore

log = logging.getLogger("flowlane.worker")

Clock = Callable[[], datetime]

CONFLICT_RETRIES = 3
"""Times a batch is run again at once when the database aborts it as a deadlock's victim."""

POISON_FACTOR = 3
"""A job claimed more than this many times ``max_attempts`` without an outcome fails."""


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WorkerSettings:
    batch: int = 200
    lease_s: float = 30.0
    poll_s: float = 0.2
    max_attempts: int = 5
    backoff_s: float = 2.0
    """The wait before the second attempt; it doubles with every attempt, up to an hour."""

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.backoff_s * 2 ** max(attempts - 1, 0), 3600.0))


@dataclass
class Worker:
    store: SqlStore
    name: str
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    smtp: SmtpSettings | None = None
    clock: Clock = wall_clock
    faults: Faults = field(default_factory=Faults)
    sink: Callable[[dict[str, Any]], None] | None = None
    stopping: bool = False
    webhooks: WebhookSender | None = None
    """Posts webhook messages; made on first use (with :func:`webhook_secret`)."""
    mail: MailMode = "smtp"
    """``sink``: emails are stored in ``sink_mails`` instead of sent (``smtp`` settings then
    only give the From address)."""

    def __post_init__(self) -> None:
        self.account = Account(self.store, self.clock(), sink=self.sink)
        self.account.runner.fire_due_timers = False
        self.queue = JobQueue(self.store)
        self.sender: Sender | None = None
        if self.mail == "sink":
            self.smtp = self.smtp or SmtpSettings()
            self.sender = SinkSender(self.store, self.clock)
        elif self.smtp is not None:
            self.sender = SmtpSender(self.smtp)
        self.kinds = (*TIMER_KINDS, "deliver") if self.sender is not None else TIMER_KINDS
        self._lease = timedelta(seconds=self.settings.lease_s)
        self._account_secret: bytes | None = None

    # ---- the loop --------------------------------------------------------------------------

    def run(self, *, until_idle: bool = False) -> None:
        """Work until :attr:`stopping` is set (SIGTERM), or until nothing is due."""
        try:
            while not self.stopping:
                try:
                    done = self.run_once()
                except SQLAlchemyError as exc:
                    log.warning("%s: database error, retrying: %s", self.name, exc)
                    done = 0
                    time.sleep(self.settings.poll_s)
                    continue
                if done == 0:
                    if until_idle:
                        return
                    time.sleep(self.settings.poll_s)
        finally:
            self.close()

    def close(self) -> None:
        if self.sender is not None:
            self.sender.close()

    def run_once(self) -> int:
        """Claim one batch and run it; the number of jobs claimed."""
        now = self.clock()
        jobs = self.queue.claim(
            now,
            self.name,
            lease_s=self.settings.lease_s,
            limit=self.settings.batch,
            kinds=self.kinds,
            id_prefixes=(WEBHOOK_JOB_PREFIX,),  # every worker delivers webhooks
        )
        if not jobs:
            return 0
        self.faults.hit("after_claim")
        # A job claimed again and again without an outcome kills the worker that runs it
        # (or its machine): stop feeding it to workers. Generous, as unrelated crashes and
        # restarts also leave claims without an outcome.
        poison = [j for j in jobs if j.attempts > POISON_FACTOR * self.settings.max_attempts]
        if poison:
            self._record_failures(
                [
                    (j, f"claimed {j.attempts} times without an outcome: it kills its worker")
                    for j in poison
                ]
            )
            jobs = [j for j in jobs if j not in poison]
        steps = [j for j in jobs if j.kind in TIMER_KINDS]
        if steps:
            self._steps(steps)
        deliveries = [job for job in jobs if job.kind == "deliver"]
        for n, job in enumerate(deliveries):
            if self.stopping:
                with self.store.transaction():
                    self.queue.release(deliveries[n:], self.name)
                break
            self._deliver(job)
        return len(jobs)

    # ---- steps -----------------------------------------------------------------------------

    def _steps(self, jobs: list[Job]) -> None:
        """Run a batch of timer steps in one transaction (group commit).

        The batch is tried whole, without a savepoint per step; if any step fails, the
        transaction is rolled back and the batch run again one step per transaction, so that
        only the failing step is retried later. Lost connections are not a step's fault: they
        go up to :meth:`run`, and the claimed jobs come back when their lease runs out.
        """
        for tries_left in range(CONFLICT_RETRIES, -1, -1):
            try:
                with self.store.transaction():
                    self._run_batch(jobs)
                    self.faults.hit("before_commit")
                return
            except DBAPIError as exc:
                self.account.runner.queue.clear()
                if exc.connection_invalidated:
                    raise
                if is_conflict(exc) and tries_left:
                    log.info("%s: deadlock victim, running the batch again", self.name)
                    continue  # not the steps' fault: no attempt counted
                if len(jobs) == 1:
                    self._record_failures([(jobs[0], f"{type(exc).__name__}: {exc}")])
                    return
                break
            except Exception as exc:  # a step failed: find which, one by one
                self.account.runner.queue.clear()
                if len(jobs) == 1:
                    log.exception("%s: job %s failed", self.name, jobs[0].id)
                    self._record_failures([(jobs[0], f"{type(exc).__name__}: {exc}")])
                    return
                break
        log.info("%s: a batch of %d failed; running it one by one", self.name, len(jobs))
        for n, job in enumerate(jobs):
            if self.stopping:
                with self.store.transaction():
                    self.queue.release(jobs[n:], self.name)
                return
            self._steps([job])

    def _run_batch(self, jobs: list[Job]) -> None:
        runner = self.account.runner
        # Instances (and their objects) first, then the job rows: the order requests use
        # (a request that cancels a timer holds its instance, then deletes the job).
        self._prefetch(jobs)
        held = self.queue.hold(jobs, self.name)
        for n, job in enumerate(jobs):
            if self.stopping:  # SIGTERM: the step under way is done; give back the rest
                self.queue.release(jobs[n:], self.name)
                return
            if job.id not in held or self.store.timer_gone(job.id):
                continue  # cancelled (meanwhile, or by an earlier step), or the lease passed
            runner.now = job.due_at
            runner.fire(
                TimerRecord(
                    job.id,
                    job.instance_id,
                    job.due_at,
                    job.seq,
                    kind=job.kind,
                    process=job.payload.get("process"),
                )
            )
            runner.run()

    def _prefetch(self, jobs: list[Job]) -> None:
        """Read (and lock) the batch's instances and their objects in a few queries."""
        ids = [job.instance_id for job in jobs if job.instance_id is not None]
        self.store.prefetch(instance_ids=ids)
        objects = []
        for iid in ids:
            state = self.store.get_instance(iid)
            if state is not None and state.object_id is not None:
                objects.append(state.object_id)
        # Locked: a step computes changes from what it reads (``name + ' done'``), so the
        # instance's own object must not change under it (other objects it reads are not).
        self.store.prefetch(object_ids=objects, lock_objects=True)

    def _record_failures(self, failures: list[tuple[Job, str]]) -> None:
        now = self.clock()
        with self.store.transaction():
            for job, error in failures:
                if job.attempts >= self.settings.max_attempts:
                    held = self.queue.fail(job, self.name, error, retry_at=None)
                    if held and job.instance_id is not None:
                        self.store.add_incident(
                            IncidentRecord(
                                job.instance_id,
                                None,
                                f"job {job.id} failed {job.attempts} times: {error}",
                                now,
                            )
                        )
                else:
                    retry_at = now + self.settings.backoff(job.attempts)
                    self.queue.fail(job, self.name, error, retry_at=retry_at)

    # ---- deliveries ------------------------------------------------------------------------

    def _secret(self) -> bytes:
        """The account secret (read once): it signs Message-IDs and reply addresses."""
        if self._account_secret is None:
            self._account_secret = account_secret(self.store)
        return self._account_secret

    def _reply_to(self, message: MessageRecord) -> str | None:
        """The reply address of an email about a task (``reply_to_task``), made for its
        recipient: only that user's replies through it are taken. None for an email to an
        address that is no user's, or when the ids do not fit in an address."""
        if message.task_id is None or message.recipient is None or self.smtp is None:
            return None
        domain = mail_domain(self.smtp.sender)
        try:
            return reply_address(self._secret(), message.task_id, message.recipient, domain)
        except ValidationError as exc:
            log.warning("%s: email %s goes without a reply address: %s", self.name, message.id, exc)
            return None

    def _webhook_sender(self) -> WebhookSender:
        if self.webhooks is None:
            self.webhooks = WebhookSender(webhook_secret(self.store))
        return self.webhooks

    def _deliver(self, job: Job) -> None:
        """Send the job's outbox message: an email, or a webhook (channel ``webhook``)."""
        outbox_id = str(job.payload.get("outbox"))
        message = self.queue.outbox_message(outbox_id)
        if message is None or message.status in ("sent", "bounced"):
            with self.store.transaction():
                self.queue.finish(job, self.name)
            return
        if not self.queue.touch(job, self.name, self.clock() + self._lease):
            return  # the lease ran out while earlier emails went out: its new holder sends
        try:
            if message.channel == "webhook":
                self._webhook_sender().post(message)
            else:
                assert self.sender is not None and self.smtp is not None
                email = build_email(
                    self.smtp,
                    outbox_id=message.id,
                    to=message.to,
                    subject=message.subject,
                    body=message.body,
                    reply_to=self._reply_to(message),
                    secret=self._secret(),
                )
                self.sender.send(email)
        except (PermanentDeliveryError, FlowlaneError) as exc:
            with self.store.transaction():
                if self.queue.finish(job, self.name):
                    self.queue.mark_undelivered(
                        message.id, "failed", str(exc), attempts=job.attempts
                    )
            return
        except TemporaryDeliveryError as exc:
            final = job.attempts >= self.settings.max_attempts
            with self.store.transaction():
                retry_at = None if final else self.clock() + self.settings.backoff(job.attempts)
                held = self.queue.fail(job, self.name, str(exc), retry_at=retry_at)
                if final and held:  # a lease passed on: the new holder has the last word
                    self.queue.mark_undelivered(
                        message.id, "failed", str(exc), attempts=job.attempts
                    )
            return
        self.faults.hit("after_send")
        with self.store.transaction():
            self.queue.finish(job, self.name)
            self.queue.mark_sent(message.id, self.clock(), attempts=job.attempts)


__all__ = ["Worker", "WorkerSettings", "wall_clock"]
