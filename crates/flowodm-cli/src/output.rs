//! Tables for people, JSON for programs, and plain text when piped.
//!
//! Colour is used only when stdout is a terminal and `NO_COLOR` is not set, so piped output is
//! plain and stable.

use std::io::{self, IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use serde_json::Value as Json;

use crate::cli::Format;

/// Whether stdout gets colours.
pub fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && io::stdout().is_terminal()
}

/// Writes `text` and a newline to stdout; a closed pipe (`| head`) is not an error.
pub fn line(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")
}

/// A table to print as aligned columns or as a JSON array of objects.
#[derive(Debug)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<Json>>,
}

impl Table {
    /// A table with these columns; JSON uses them as keys.
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row, one value per column.
    pub fn row(&mut self, cells: Vec<Json>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    /// Prints the table in the format asked for.
    pub fn print(&self, format: Format) -> io::Result<()> {
        match format {
            Format::Json => {
                let array: Vec<Json> = self
                    .rows
                    .iter()
                    .map(|r| {
                        Json::Object(
                            self.headers
                                .iter()
                                .map(|h| h.to_string())
                                .zip(r.iter().cloned())
                                .collect(),
                        )
                    })
                    .collect();
                line(&serde_json::to_string_pretty(&Json::Array(array))?)
            }
            Format::Table => line(self.render(colour()).trim_end_matches('\n')),
        }
    }

    /// The table as aligned text; numbers right-aligned, headers bold when `colour`.
    pub fn render(&self, colour: bool) -> String {
        let text = |v: &Json| match v {
            Json::String(s) => s.clone(),
            Json::Null => "-".to_string(),
            Json::Array(items) => items
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        };
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(text).collect())
            .collect();
        let widths: Vec<usize> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([h.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..self.headers.len())
            .map(|i| {
                !self.rows.is_empty()
                    && self.rows.iter().all(|r| r[i].is_number() || r[i].is_null())
            })
            .collect();
        let header = Style::new().bold().underline();
        let dim = Style::new().fg_color(Some(AnsiColor::BrightBlack.into()));
        let mut out = String::new();
        let mut write_row = |row: &[String], style: Option<Style>| {
            let mut first = true;
            for (i, cell) in row.iter().enumerate() {
                if !first {
                    out.push_str("  ");
                }
                first = false;
                let pad = widths[i].saturating_sub(cell.chars().count());
                let last = i + 1 == row.len();
                let styled = match style {
                    Some(s) if colour => format!("{s}{cell}{s:#}"),
                    _ if colour && cell == "-" => format!("{dim}{cell}{dim:#}"),
                    _ => cell.clone(),
                };
                if numeric[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&styled);
                } else {
                    out.push_str(&styled);
                    if !last {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push('\n');
        };
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_uppercase()).collect();
        write_row(&headers, Some(header));
        for row in &cells {
            write_row(row, None);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_tables_align_and_json_keeps_the_values() {
        let mut t = Table::new(&["topic", "partition", "lag"]);
        t.row(vec![json!("orders"), json!(0), json!(12)]);
        t.row(vec![json!("o"), json!(10), Json::Null]);
        assert_eq!(
            t.render(false),
            "TOPIC   PARTITION  LAG\norders          0   12\no              10    -\n"
        );
        let coloured = t.render(true);
        assert!(coloured.contains("\u{1b}["), "{coloured:?}");
    }
}
