"""E-mails to a pair's members: welcome, invitations and updates (.ics), cancellations, reminders.

What is due is worked out from what is stored (members, sessions, their SEQUENCE) against
``twinning_notices``, the record of what was sent, so every notice goes out once — also across
a restart — and a member added later still gets the pair's invitations. One background task,
owned by the meetings feature and cancelled when the hub stops, checks every ``interval``
seconds and whenever something changed (:meth:`Notifier.wake`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from core.tasks import cancel

from . import ics, messages
from .mail import Mailer, MailError
from .pairs import Member, Pair, PairStore, Session
from .service import Twinnings, public_url, welcome_key
from .timing import OPENS_EARLY, in_zone
from .vocabulary import Notice

logger = logging.getLogger(__name__)

#: Reminders, most urgent first: only the most urgent one due is sent (a late 24 h one is not).
REMINDERS = ((Notice.REMINDER_15M, timedelta(minutes=15)), (Notice.REMINDER_24H, timedelta(hours=24)))
INTERVAL_S = 30.0


class Notifier:
    """Sends what is due, records it, and sleeps until the next check or a change."""

    def __init__(self, twinnings: Twinnings, mailer: Mailer | None, interval: float = INTERVAL_S,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.twinnings = twinnings
        self.store: PairStore = twinnings.store
        self.mailer = mailer
        self.interval = interval
        self.now = clock
        self.passes = 0  # completed checks (tests and /healthz)
        self.sent = 0
        self.failed = 0  # messages the relay refused (each is tried again on the next check)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one check at a time: two would both find the same notice due
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.mailer is None:
            logger.warning("no SMTP relay configured (UNIONHUB_SMTP_HOST): invitations and reminders are not e-mailed")
            return
        self._task = asyncio.create_task(self._run(), name="meetings-notifier")

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                logger.exception("notifier pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def run_once(self) -> int:
        """One check: send everything due now; the number of e-mails sent."""
        async with self._lock:
            sent = 0
            now = self.now()
            try:
                for pair in await self.store.for_email(None):
                    sent += await self._welcome(pair)
                    for session in await self.store.sessions(pair.id):
                        sent += await self._session(pair, session, now)
            finally:
                self.passes += 1
                self.sent += sent
            return sent

    async def _welcome(self, pair: Pair) -> int:
        key = welcome_key(pair.id)
        done = {email for email, *_ in await self.store.sent(key)}
        count = 0
        for member in pair.members:
            if member.email.casefold() in done:
                continue
            lang = reader_language(pair, member)
            message = self._message(member, messages.text(lang, "welcome.subject", pair=pair.name), lang)
            message.set_content(messages.text(
                lang, "welcome.body", name=member.name or member.email, pair=pair.name,
                sides=messages.text(lang, "sides.and").join(b.name for b in pair.branches),
                role=messages.text(lang, f"role.{member.role.value}"), url=f"{public_url() or ''}/t/{pair.id}",
            ))
            if await self._send(message):
                await self.store.mark_sent(key, member.email, Notice.WELCOME)
                count += 1
        return count

    async def _session(self, pair: Pair, session: Session, now: datetime) -> int:
        end = session.schedule.last_end()
        if end is not None and end <= now:
            return 0  # over: nothing to announce any more
        sent = await self.store.sent(session.id)
        invited = {email for email, kind, _, _ in sent if kind is Notice.INVITATION}
        count = 0
        for member in pair.members:
            email = member.email.casefold()
            if session.cancelled:
                if email in invited and (email, Notice.CANCELLATION, "", session.sequence) not in sent:
                    if await self._send(await self._calendar_message(pair, session, member)):
                        await self.store.mark_sent(session.id, member.email, Notice.CANCELLATION, "", session.sequence)
                        count += 1
                continue
            if (email, Notice.INVITATION, "", session.sequence) not in sent:
                if not await self._send(await self._calendar_message(pair, session, member)):
                    continue  # no reminder before the invitation
                await self.store.mark_sent(session.id, member.email, Notice.INVITATION, "", session.sequence)
                count += 1
            count += await self._remind(pair, session, member, now, sent)
        return count

    async def _remind(self, pair: Pair, session: Session, member: Member, now: datetime,
                      sent: set[tuple[str, Notice, str, int]]) -> int:
        start = session.schedule.next_occurrence(now)
        if start is None or start <= now:
            return 0  # running now: the reminder time has passed
        occurrence = start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        for kind, lead in REMINDERS:
            if start - lead <= now:
                if (member.email.casefold(), kind, occurrence, 0) in sent:
                    return 0
                lang = reader_language(pair, member)
                soon = lead <= timedelta(minutes=15)
                subject = messages.text(lang, "remind.subject.soon" if soon else "remind.subject.tomorrow",
                                        title=session.title, minutes=int(lead.total_seconds() // 60))
                message = self._message(member, subject, lang)
                message.set_content(messages.text(
                    lang, "remind.body", title=session.title, pair=pair.name, times=_times(pair, start, lang),
                    minutes=OPENS_EARLY_MINUTES, link=await self.twinnings.personal_link(session, member),
                ))
                if not await self._send(message):
                    return 0
                await self.store.mark_sent(session.id, member.email, kind, occurrence, 0)
                return 1
        return 0

    async def _calendar_message(self, pair: Pair, session: Session, member: Member) -> EmailMessage:
        assert self.mailer is not None
        link = await self.twinnings.personal_link(session, member)
        lang = reader_language(pair, member)
        names = {"title": session.title, "pair": pair.name}
        if session.cancelled:
            subject, method = messages.text(lang, "cancel.subject", **names), "CANCEL"
            body = messages.text(lang, "cancel.body", **names)
        else:
            subject = messages.text(lang, "update.subject" if session.sequence else "invite.subject", **names)
            method = "REQUEST"
            start = session.schedule.next_occurrence(self.now()) or session.schedule.start
            rule = session.schedule.rule
            body = messages.text(
                lang, "invite.body", **names, times=_times(pair, start, lang), minutes=OPENS_EARLY_MINUTES, link=link,
                repeats=messages.text(lang, "invite.repeats", rule=rule) if rule else "",
            )
        message = self._message(member, subject, lang)
        message.set_content(body)
        data = ics.calendar(session, pair, link, self.mailer.sender, member.email)
        message.add_attachment(data, maintype="text", subtype="calendar", filename="session.ics",
                               params={"method": method, "charset": "utf-8"})
        return message

    def _message(self, member: Member, subject: str, lang: str) -> EmailMessage:
        message = EmailMessage()
        message["To"] = member.email
        message["Subject"] = subject
        message["X-Unionhub-Language"] = lang  # (Content-Language is set last: set_content clears it)
        return message

    async def _send(self, message: EmailMessage) -> bool:
        """Whether the relay took it; a refusal (logged by the mailer) leaves it due for next time
        without holding up the other members' notices."""
        assert self.mailer is not None
        lang = message["X-Unionhub-Language"]
        if lang is not None:
            del message["X-Unionhub-Language"]
            message["Content-Language"] = str(lang)
        try:
            await self.mailer.send(message)
        except MailError:
            self.failed += 1
            return False
        logger.info("sent %r", message["Subject"])
        return True


#: (the room opens this many minutes before a session: timing.OPENS_EARLY, in the e-mails' words)
OPENS_EARLY_MINUTES = int(OPENS_EARLY.total_seconds() // 60)


def reader_language(pair: Pair, member: Member) -> str:
    """The language a member's e-mails are written in: their branch's first, else English."""
    if member.branch is not None and 0 <= member.branch < len(pair.branches):
        return messages.language_for(pair.branches[member.branch].languages)
    return messages.FALLBACK


def _times(pair: Pair, start: datetime, lang: str) -> str:
    lines = []
    for branch in pair.branches:
        local = in_zone(start, branch.timezone)
        lines.append(messages.text(lang, "times.line", branch=branch.name, start=local["start"].replace("T", " "),
                                   zone=branch.timezone, offset=local["offset"]))
    return "\n".join(lines)
