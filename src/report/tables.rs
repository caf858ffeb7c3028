//! Tables as polars frames, rendered to Markdown (book) and LaTeX booktabs (paper). Numbers are
//! formatted once, here, so the book and the paper print the same digits.

use anyhow::Result;
use polars::prelude::*;

/// The one number format of reports: 3 decimals.
pub fn num(x: f64) -> String {
    format!("{x:.3}")
}

/// A mean with its 95% interval: `4.123 [4.100, 4.150]`.
pub fn mean_ci(m: f64, lo: f64, hi: f64) -> String {
    format!("{} [{}, {}]", num(m), num(lo), num(hi))
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

fn latex_escape(s: &str) -> String {
    s.replace('\\', "\\textbackslash{}")
        .replace('&', "\\&")
        .replace('%', "\\%")
        .replace('_', "\\_")
        .replace('#', "\\#")
        .replace('$', "\\$")
}

/// A booktabs `tabular` (no float: the paper wraps it with its own caption).
pub fn latex(df: &DataFrame) -> Result<String> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| latex_escape(s))
        .collect();
    let align: String = df
        .get_columns()
        .iter()
        .map(|c| {
            if c.dtype().is_primitive_numeric() {
                'r'
            } else {
                'l'
            }
        })
        .collect();
    let mut out = format!(
        "\\begin{{tabular}}{{{align}}}\n\\toprule\n{} \\\\\n\\midrule\n",
        names.join(" & ")
    );
    for r in cells(df)? {
        out.push_str(&format!(
            "{} \\\\\n",
            r.iter()
                .map(|c| latex_escape(c))
                .collect::<Vec<_>>()
                .join(" & ")
        ));
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n");
    Ok(out)
}

/// Write a frame as a JSON array of row objects, atomically.
pub fn write_json(path: &std::path::Path, df: &mut DataFrame) -> Result<()> {
    let mut buf = Vec::new();
    JsonWriter::new(&mut buf)
        .with_json_format(JsonFormat::Json)
        .finish(df)?;
    crate::io::write_bytes(path, &buf)
}
