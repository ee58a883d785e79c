//! stdout as `receive` writes it: every byte counted and, when stdout is a
//! pipe, how many of them its reader has taken out.
//!
//! A record counts as received once its reader has it. For a file or a
//! terminal that is once it is written. A pipe holds up to 64 KiB that its
//! reader may never read (`| head -1` exits after a line), so there it is
//! once the reader took the record's last byte out of the pipe: the bytes
//! written minus those still in the pipe, which Linux reports for the write
//! end too, even after the reader closed its end (`FIONREAD`). The pipe is
//! first in, first out, so bytes another writer left unread before ours
//! only make the count lower: a record may come again, never be lost.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileTypeExt;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// How long a wait for a pipe to drain sleeps between looks, at most: a
/// writer is woken when a full pipe gets room, never when it empties.
const DRAIN_LOOK: Duration = Duration::from_millis(50);

/// The process's stdout, written unbuffered and counted.
#[derive(Debug)]
pub(crate) struct Stdout {
    file: File,
    pipe: bool,
    written: u64,
}

impl Stdout {
    /// stdout (a duplicate of its descriptor, written without the standard
    /// library's line buffer, so that what was written is known exactly).
    pub(crate) fn open() -> io::Result<Stdout> {
        let file = File::from(io::stdout().as_fd().try_clone_to_owned()?);
        let pipe = file.metadata()?.file_type().is_fifo() && unread(file.as_fd()).is_some();
        Ok(Stdout {
            file,
            pipe,
            written: 0,
        })
    }

    /// Writes all of `buf`, counting what went out even when an error
    /// (a closed pipe) stops it midway.
    pub(crate) fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.file.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n as u64;
                    buf = &buf[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Bytes written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Bytes the reader has taken: all that were written, unless stdout is
    /// a pipe.
    pub(crate) fn taken(&self) -> u64 {
        if !self.pipe {
            return self.written;
        }
        match unread(self.file.as_fd()) {
            Some(n) => self.written.saturating_sub(n),
            // FIONREAD answered when stdout was opened; should it fail now,
            // what was written counts, as for a file.
            None => self.written,
        }
    }

    /// Waits until the reader has taken every byte in the pipe or closed
    /// its end; returns whether it is still there.
    pub(crate) fn drain(&self) -> io::Result<bool> {
        if !self.pipe {
            return Ok(true);
        }
        let mut look = Duration::from_millis(1);
        loop {
            if unread(self.file.as_fd()).is_none_or(|n| n == 0) {
                return Ok(true);
            }
            // No events asked: poll reports only an error, which on a
            // pipe's write end means the reader is gone.
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::empty())];
            let ms = u16::try_from(look.as_millis()).unwrap_or(u16::MAX);
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => {}
                Ok(_) => {
                    let gone = fds[0]
                        .revents()
                        .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP));
                    if gone {
                        return Ok(false);
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            look = (look * 2).min(DRAIN_LOOK);
        }
    }
}

/// Bytes in the pipe `fd` (either end) that its reader has not taken;
/// `None` where that cannot be known.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn unread(fd: BorrowedFd<'_>) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD stores one c_int through its argument, which points
    // at `n`, alive and writable for the whole call; `fd` is open (it is
    // borrowed for the call).
    let rc = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    if rc < 0 {
        return None;
    }
    u64::try_from(n).ok()
}

/// Elsewhere, what was written counts as taken.
#[cfg(not(target_os = "linux"))]
fn unread(_fd: BorrowedFd<'_>) -> Option<u64> {
    None
}
