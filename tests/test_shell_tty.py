"""`cafebot shell` at a terminal (issue #17, point 20): a real process in a pseudo-terminal,
driven with the keys a person presses: Ctrl-C, Ctrl-D and Tab."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="no pty")]


def _controlling_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty (its
    standard input), so that the terminal turns Ctrl-C into SIGINT for it, as a shell's does."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # And, as a shell starts a job, with no signal blocked and SIGINT at its default. The test
    # runner may ignore SIGINT: bash ignores it in a command started with `&` where job control
    # is off (as `(nohup bash .ci/run &)` is), the child inherits that across exec, and Python
    # then leaves Ctrl-C ignored; that, not readline, left Ctrl-C unanswered in CI runs.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """A process on the slave side of a pty; ``send`` types, ``expect`` reads the screen."""

    def __init__(self, *args: str) -> None:
        master, slave = pty.openpty()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "INPUTRC": "/dev/null"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cafebot", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            preexec_fn=_controlling_terminal,
        )
        os.close(slave)
        self.master = master
        self.seen = ""

    def send(self, keys: str) -> None:
        # As a person types: not within a millisecond of the prompt, while readline may
        # still be setting up the terminal (keys typed then have left a Ctrl-C unanswered).
        time.sleep(0.3)
        os.write(self.master, keys.encode())

    def expect(self, text: str, timeout: float = 20) -> str:
        """Read until ``text`` appears; return what came before it and consume it."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen; the terminal shows:\n{self.seen}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the process ended and closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{text!r} not seen before the end:\n{self.seen}")
                self.seen += chunk.decode(errors="replace")
        before, _, self.seen = self.seen.partition(text)
        return before

    def interrupt(self) -> str:
        """Ctrl-C, then what came before the next prompt."""
        self.send("\x03")
        try:
            return self.expect("cafe> ")
        except AssertionError as unanswered:
            raise AssertionError(f"{unanswered}\n{self.signal_state()}") from None

    def signal_state(self) -> str:
        """What the kernel says of the shell's signals and terminal, for a failure's message:
        whether a SIGINT is pending or blocked, where the process waits, whether the terminal
        still turns Ctrl-C into a signal, and for which process group."""
        proc = Path(f"/proc/{self.proc.pid}")
        try:
            lines = [
                line.strip()
                for line in (proc / "status").read_text().splitlines()
                if line.startswith(
                    ("State", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
                )
            ]
            lines.append(f"wchan: {(proc / 'wchan').read_text()}")
        except OSError as e:
            lines = [f"/proc unreadable: {e}"]
        lflag = termios.tcgetattr(self.master)[3]
        lines.append(
            f"terminal ISIG: {bool(lflag & termios.ISIG)}, ICANON: {bool(lflag & termios.ICANON)}"
        )
        lines.append(
            f"foreground group {os.tcgetpgrp(self.master)}, shell's {os.getpgid(self.proc.pid)}"
        )
        return "\n".join(lines)

    def command(self, keys: str) -> str:
        """Type ``keys`` and Enter; what the shell printed up to its next prompt."""
        self.send(f"{keys}\r")
        return self.expect("cafe> ")

    def leave(self) -> int:
        """Ctrl-D at the prompt; the exit status."""
        self.send("\x04")
        return self.proc.wait(timeout=20)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Terminal]:
    terminal = Terminal("shell", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--as", "Ada <a@x.org>")
    yield terminal
    terminal.close()


def test_ctrl_c_clears_the_line_and_ctrl_d_leaves(shell: Terminal) -> None:
    shell.expect("Ctrl-D to leave.")
    shell.expect("cafe> ")
    shell.send("agenda 10m Never sent")
    shell.expect("Never sent")  # echoed as typed
    shell.interrupt()  # Ctrl-C: the line is dropped, the shell stays
    assert shell.proc.poll() is None
    shell.send("agenda 10m Continued \\\r")  # a line to be continued, then Ctrl-C
    shell.expect("... ")
    shell.interrupt()
    listing = shell.command("list")
    assert "No items yet" in listing
    assert "Never sent" not in listing.split("list", 1)[1]
    assert shell.leave() == 0  # Ctrl-D at an empty prompt


def test_tab_completes_command_names(shell: Terminal) -> None:
    shell.expect("cafe> ")
    shell.send("agen\t")
    shell.expect("agenda ")  # completed, with the space after it
    assert ":check:" in shell.command("10m Release plans")
    listing = shell.command("li\t")  # `li` alone is no command: only its completion works
    assert "**A1** (10 min) Release plans — Ada" in listing
    assert "I don't know the command" not in listing
    assert "The next reminder, " in shell.command("preview rem\t")
    assert shell.leave() == 0


def test_preview_reminders_shows_the_next_reminder_exactly(tmp_path: Path) -> None:
    config = tmp_path / "c.ini"
    config.write_text(
        "[series:cafe]\nstream = jupyterhub\nlink = https://meet.example.org/cafe\nreminders = 0m\n"
    )
    terminal = Terminal(
        "shell", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'c.db'}", "--as", "Ada"
    )
    try:
        terminal.expect("cafe> ")
        assert ":check:" in terminal.command("agenda 10m Release plans")
        shown = terminal.command("preview reminders")
        assert "The next reminder, at the start of the meeting of 20" in shown
        assert " to #jupyterhub > Collaboration Cafe 20" in shown
        # The message itself, as reminder_text writes it (<time:...> shown locally).
        assert "**The Collaboration Cafe is starting now** (" in shown
        assert "Join: https://meet.example.org/cafe" in shown
        assert "\r\n\r\n**Agenda so far** (10 min of 60 min):\r\n" in shown
        assert "\n- A1 (10 min) Release plans — Ada\r\n" in shown
        assert "Add a topic: `agenda 10m Your topic`" in shown
        assert "<time:" not in shown
        assert terminal.leave() == 0
    finally:
        terminal.close()
