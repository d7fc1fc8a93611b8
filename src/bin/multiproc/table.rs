//! Plain-text tables and figures for terminal output.
//!
//! A [`Table`] lines up columns two spaces apart, left- or right-aligned, and
//! shortens one chosen column (the segment name) with an ellipsis when the
//! whole does not fit the terminal. Widths count characters, which is right
//! for the ASCII and Latin text the tool prints (`µs` included).

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Flush left (text).
    Left,
    /// Flush right (figures).
    Right,
}

/// A table: a header row, then rows of cells.
#[derive(Debug)]
pub struct Table {
    /// Column titles and alignments.
    columns: Vec<(&'static str, Align)>,
    /// The rows; each has one cell per column.
    rows: Vec<Vec<String>>,
    /// The column that may be shortened to fit the width, if any.
    shrink: Option<usize>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table { columns: columns.to_vec(), rows: Vec::new(), shrink: None }
    }

    /// Lets column `index` be shortened (with `…`) to fit the width given to
    /// [`render`](Self::render).
    pub fn shrink_column(mut self, index: usize) -> Table {
        self.shrink = Some(index);
        self
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.columns.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text, one line per row, each ending in a newline; no
    /// line is wider than `width` (if given) unless the columns that cannot
    /// shrink are wider on their own.
    pub fn render(&self, width: Option<usize>) -> String {
        let n = self.columns.len();
        let mut widths: Vec<usize> = self.columns.iter().map(|(t, _)| chars(t)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(chars(cell));
            }
        }
        if let (Some(limit), Some(s)) = (width, self.shrink) {
            let total: usize = widths.iter().sum::<usize>() + 2 * n.saturating_sub(1);
            if total > limit {
                // Never below the title's width or 8 characters.
                let floor = chars(self.columns[s].0).max(8);
                widths[s] = widths[s].saturating_sub(total - limit).max(floor);
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|(t, _)| t.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let cell = if Some(i) == self.shrink { ellipsize(cell, widths[i]) } else { cell.clone() };
                let pad = widths[i].saturating_sub(chars(&cell));
                if i > 0 {
                    line.push_str("  ");
                }
                match self.columns[i].1 {
                    Align::Left if i + 1 == n => line.push_str(&cell),
                    Align::Left => {
                        line.push_str(&cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(&cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Characters in `s` (its width on a terminal, for the text this tool prints).
fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s`, shortened to `width` characters with a trailing `…` if it is longer.
fn ellipsize(s: &str, width: usize) -> String {
    if chars(s) <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The width to fit output to: `COLUMNS` if set, else 80 when standard
/// output is a terminal, else none (output to a file or a pipe is never
/// shortened).
pub fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).filter(|&c: &usize| c > 0) {
        return Some(c);
    }
    std::io::stdout().is_terminal().then_some(80)
}

/// A size in bytes for people: `512 B`, `4.0 KiB`, `1.5 MiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut x = n as f64 / 1024.0;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    format!("{x:.1} {}", UNITS[unit])
}

/// A duration in nanoseconds for people, with three significant digits:
/// `18.2 ns`, `6.21 µs`, `1.05 ms`, `2.50 s`.
pub fn duration_ns(ns: f64) -> String {
    let (x, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{} {unit}", sig3(x))
}

/// `x` with three significant digits (`6.21`, `62.1`, `621`).
pub fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return "-".to_string();
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&[("NAME", Align::Left), ("SIZE", Align::Right), ("STATUS", Align::Left)]);
        t.row(vec!["a".into(), "4.0 KiB".into(), "stale".into()]);
        t.row(vec!["longer-name".into(), "12 B".into(), "attached".into()]);
        assert_eq!(
            t.render(None),
            "NAME            SIZE  STATUS\n\
             a            4.0 KiB  stale\n\
             longer-name     12 B  attached\n"
        );
    }

    #[test]
    fn table_shrinks_the_chosen_column_to_fit() {
        let mut t = Table::new(&[("NAME", Align::Left), ("STATUS", Align::Left)]).shrink_column(0);
        t.row(vec!["a-very-long-segment-name".into(), "stale".into()]);
        let out = t.render(Some(20));
        assert!(out.lines().all(|l| l.chars().count() <= 20), "{out}");
        assert!(out.contains("a-very-long…  stale"), "{out}");
        // Without a width nothing is shortened.
        assert!(t.render(None).contains("a-very-long-segment-name"));
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(4096), "4.0 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(duration_ns(18.24), "18.2 ns");
        assert_eq!(duration_ns(6210.0), "6.21 µs");
        assert_eq!(duration_ns(1.05e6), "1.05 ms");
        assert_eq!(duration_ns(2.5e9), "2.50 s");
        assert_eq!(sig3(f64::NAN), "-");
    }
}
