//! Tables as polars frames, rendered to Markdown (book) and LaTeX booktabs (paper). Numbers are
//! formatted once, here, so the book and the paper print the same digits.

use anyhow::Result;
use polars::prelude::*;

/// The one number format of reports: 3 decimals.
pub fn num(x: f64) -> String {
    format!("{x:.3}")
}

/// A p-value: 3 significant digits, scientific below 0.001 (`0.25`, `0.0312`, `4.99e-5`).
pub fn pval(p: f64) -> String {
    if p >= 0.001 {
        let s = format!("{p:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{p:.2e}")
    }
}

/// An integer with thousands separators: `819,200`.
pub fn int(x: u64) -> String {
    let s = x.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A share as a percentage with one decimal: `16.4%`.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// A column of text cells (numbers formatted by the functions above).
pub fn col<T: Into<String>>(name: &str, v: impl IntoIterator<Item = T>) -> Column {
    Column::new(
        name.into(),
        v.into_iter().map(Into::into).collect::<Vec<String>>(),
    )
}

/// A mean with its interval: `4.123 [4.100, 4.150]`.
pub fn mean_ci(m: f64, lo: f64, hi: f64) -> String {
    format!("{} [{}, {}]", num(m), num(lo), num(hi))
}

/// Plain text to LaTeX: the special characters escaped, and `code` spans (in backticks) set
/// in `\texttt`. The crate's one LaTeX escaper (its Markdown one is [`md_escape`]).
pub fn tex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut code = false;
    for ch in s.chars() {
        match ch {
            '`' => {
                out += if code { "}" } else { "\\texttt{" };
                code = !code;
            }
            '\\' => out += "\\textbackslash{}",
            '~' => out += "\\textasciitilde{}",
            '^' => out += "\\textasciicircum{}",
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    if code {
        out.push('}');
    }
    out
}

/// Plain text for a Markdown paragraph, list item or table cell: one line, and every character
/// Markdown (or the HTML inside it) would interpret escaped, so generated text shows as it is.
/// mdBook's smart punctuation would also turn `--` into a dash (a sample's `dpkg --help`, a
/// note's `--config`), so a hyphen after a hyphen is escaped too; quotes and `...` are left to
/// it (curly quotes and an ellipsis change no word).
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = ' ';
    for ch in s.chars() {
        match ch {
            '-' if prev == '-' => out += "\\-",
            '\n' | '\r' | '\t' => out.push(' '),
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '&' => out += "&amp;",
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            _ => out.push(ch),
        }
        prev = ch;
    }
    out
}

/// Every cell of a frame as text (numbers with [`num`], integers as they are).
fn cells(df: &DataFrame) -> Result<Vec<Vec<String>>> {
    let mut rows = vec![Vec::with_capacity(df.width()); df.height()];
    for col in df.get_columns() {
        let s = col.as_materialized_series();
        for (i, row) in rows.iter_mut().enumerate() {
            let v = s.get(i)?;
            row.push(match v {
                AnyValue::Float64(x) => num(x),
                AnyValue::Float32(x) => num(x as f64),
                AnyValue::UInt64(x) => int(x),
                AnyValue::UInt32(x) => int(x as u64),
                AnyValue::Int64(x) if x >= 0 => int(x as u64),
                AnyValue::String(x) => x.to_string(),
                AnyValue::StringOwned(x) => x.to_string(),
                AnyValue::Null => String::new(),
                other => other.to_string(),
            });
        }
    }
    Ok(rows)
}

/// GitHub-flavoured Markdown table.
pub fn markdown(df: &DataFrame) -> Result<String> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut out = format!(
        "| {} |\n|{}|\n",
        names.join(" | "),
        names.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for r in cells(df)? {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    Ok(out)
}

/// A booktabs `tabular`, scaled down to the text width when wider (no float: the paper wraps
/// it with its own caption).
pub fn latex(df: &DataFrame) -> Result<String> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| tex_escape(s))
        .collect();
    let rows = cells(df)?;
    // A text column with long cells (a sentence saying what a signal does) wraps in a
    // paragraph column: left on one line it widened the table until the scaling to the text
    // width made every column unreadable.
    let longest = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let align: String = df
        .get_columns()
        .iter()
        .enumerate()
        .map(
            |(i, c)| match (c.dtype().is_primitive_numeric(), longest(i)) {
                (true, _) => "r".to_string(),
                (false, n) if n > WRAP_CHARS => {
                    ">{\\raggedright\\arraybackslash}p{6cm}".to_string()
                }
                _ => "l".to_string(),
            },
        )
        .collect();
    let mut out = format!(
        "\\begin{{adjustbox}}{{max width=\\linewidth}}\n\\begin{{tabular}}{{{align}}}\n\\toprule\n{} \\\\\n\\midrule\n",
        names.join(" & ")
    );
    for r in rows {
        out.push_str(&format!(
            "{} \\\\\n",
            r.iter()
                .map(|c| tex_escape(c))
                .collect::<Vec<_>>()
                .join(" & ")
        ));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n\\end{adjustbox}\n");
    Ok(out)
}

/// Cells longer than this make their column wrap in the paper ([`latex`]).
const WRAP_CHARS: usize = 80;

/// Write a frame as a JSON array of row objects, atomically.
pub fn write_json(path: &std::path::Path, df: &mut DataFrame) -> Result<()> {
    let mut buf = Vec::new();
    JsonWriter::new(&mut buf)
        .with_json_format(JsonFormat::Json)
        .finish(df)?;
    crate::io::write_bytes(path, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CommonMark reads `\-` as a literal hyphen, which mdBook's smart punctuation leaves alone
    /// (checked with mdBook on 2026-12-06: `-\-config` shows as `--config`, `--config` as
    /// `–config`); a lone hyphen, a minus sign, is left as it is.
    #[test]
    fn markdown_text_keeps_its_double_hyphens_and_escapes_code_marks() {
        assert_eq!(md_escape("dpkg --help"), "dpkg -\\-help");
        assert_eq!(md_escape("a --- b -0.5"), "a -\\-\\- b -0.5");
        assert_eq!(md_escape("`x_y` <b>\nz"), "\\`x\\_y\\` &lt;b&gt; z");
    }

    #[test]
    fn a_text_column_of_long_cells_wraps_in_latex_and_short_ones_do_not() {
        let long = "x ".repeat(WRAP_CHARS);
        let df = DataFrame::new(vec![
            col("name", ["a", "b"].map(String::from)),
            col("what it does", [long.clone(), "short".into()]),
            Column::new("n".into(), [1u64, 2]),
        ])
        .unwrap();
        let t = latex(&df).unwrap();
        let wrap = ">{\\raggedright\\arraybackslash}p{6cm}";
        assert!(
            t.contains(&format!("\\begin{{tabular}}{{l{wrap}r}}")),
            "{t}"
        );
        let df = DataFrame::new(vec![col("what it does", ["short".to_string()])]).unwrap();
        assert!(latex(&df).unwrap().contains("\\begin{tabular}{l}"));
    }
}
