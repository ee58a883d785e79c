//! The terminal in full-screen mode, given back as it was however the view
//! ends: normally, on an error (the guard's drop) or on a panic (a hook
//! that restores before the panic's message is printed, which matters in
//! the `client` profile, where a panic aborts and nothing is dropped).

use std::io::{self, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

/// Whether the terminal is in full-screen mode now (so restoring twice,
/// from the hook and the guard, is harmless).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Gives the terminal back: normal screen, cursor shown, cooked mode.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(out, LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
        let _ = out.flush();
    }
}

/// The terminal in full-screen mode; dropping it gives the terminal back.
pub(crate) struct Screen {
    /// The terminal ratatui draws on.
    pub(crate) terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Screen")
    }
}

impl Screen {
    /// Enters the alternate screen in raw mode, the cursor hidden.
    pub(crate) fn enter() -> Result<Screen> {
        static HOOKED: std::sync::Once = std::sync::Once::new();
        HOOKED.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        ACTIVE.store(true, Ordering::SeqCst);
        let entered = execute!(io::stdout(), EnterAlternateScreen, Hide);
        if let Err(e) = entered {
            restore();
            return Err(anyhow::Error::new(e).context("cannot enter the alternate screen"));
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                restore();
                Err(anyhow::Error::new(e).context("cannot draw on the terminal"))
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}
