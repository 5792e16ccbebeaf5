//! Row queries in Refuel's `get_items` shape: filters
//! (`{field, operator, value}`), several `order_by` keys with `ASC`/`DESC`,
//! `max_items` and `offset`. Each filter becomes a DataFusion expression
//! over a column looked up by its exact name; values are cast to the
//! column's type (a value that does not fit is refused, not compared as
//! text).

use std::fmt;
use std::str::FromStr;

use anyhow::{anyhow, bail};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::json::{writer::JsonArray, WriterBuilder};
use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{cast, Expr, SortExpr};
use datafusion::prelude::{lit, DataFrame};
use labhost::Workspace;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::table::{one_line, session, StoredTable};

/// Rows returned when `max_items` is not given (Refuel's default).
pub const DEFAULT_MAX_ITEMS: usize = 20;
/// Most rows one query returns.
pub const MAX_ITEMS: usize = 10_000;
/// Most filters and sort keys in one query.
pub const MAX_TERMS: usize = 32;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    IsNull,
    IsNotNull,
    Like,
    ILike,
    NotLike,
    NotILike,
}

const OPS: [(&str, Op); 12] = [
    ("IS NOT NULL", Op::IsNotNull),
    ("IS NULL", Op::IsNull),
    ("NOT ILIKE", Op::NotILike),
    ("NOT LIKE", Op::NotLike),
    ("ILIKE", Op::ILike),
    ("LIKE", Op::Like),
    ("<>", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("=", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
];

impl Op {
    pub fn as_str(self) -> &'static str {
        OPS.iter()
            .find(|(_, o)| *o == self)
            .map(|(s, _)| *s)
            .unwrap()
    }
    fn takes_value(self) -> bool {
        !matches!(self, Op::IsNull | Op::IsNotNull)
    }
    fn is_pattern(self) -> bool {
        matches!(self, Op::Like | Op::ILike | Op::NotLike | Op::NotILike)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Op> {
        let norm = s
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        if norm == "!=" {
            return Ok(Op::Ne);
        }
        OPS.iter()
            .find(|(name, _)| *name == norm)
            .map(|(_, op)| *op)
            .ok_or_else(|| {
                anyhow!(
                    "unknown operator `{s}` (expected one of {})",
                    OPS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )
            })
    }
}

impl TryFrom<String> for Op {
    type Error = anyhow::Error;
    fn try_from(s: String) -> anyhow::Result<Op> {
        s.parse()
    }
}

impl From<Op> for String {
    fn from(o: Op) -> String {
        o.as_str().into()
    }
}

/// One filter: `field operator value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub field: String,
    pub operator: Op,
    /// A string, number or boolean; absent for `IS NULL`/`IS NOT NULL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl FromStr for Filter {
    type Err = anyhow::Error;
    /// `FIELD OP [VALUE]`, e.g. `score >= 0.5`, `label ILIKE %good%`,
    /// `note IS NULL` (the CLI's `--filter`).
    fn from_str(s: &str) -> anyhow::Result<Filter> {
        let s = s.trim();
        let bad = || {
            anyhow!("filter `{s}` is not `FIELD OPERATOR [VALUE]` (e.g. `score >= 0.5`, `note IS NULL`)")
        };
        // The field is everything before the first operator: a symbol
        // anywhere, or a run of operator words (any case, any spacing)
        // standing as whole words after the field.
        let mut best: Option<(usize, usize, Op)> = None;
        let mut consider = |i: usize, end: usize, op: Op| {
            if i > 0 && best.is_none_or(|(b, bend, _)| i < b || (i == b && end > bend)) {
                best = Some((i, end, op));
            }
        };
        for (name, op) in OPS.iter().copied().chain([("!=", Op::Ne)]) {
            if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                continue;
            }
            if let Some(i) = s.find(name) {
                consider(i, i + name.len(), op);
            }
        }
        let words: Vec<(usize, &str)> = s
            .split_whitespace()
            .map(|w| (w.as_ptr() as usize - s.as_ptr() as usize, w))
            .collect();
        for (name, op) in OPS {
            let want: Vec<&str> = name.split(' ').collect();
            if !want[0].starts_with(|c: char| c.is_ascii_alphabetic()) {
                continue;
            }
            for (k, win) in words.windows(want.len()).enumerate() {
                if k > 0
                    && win
                        .iter()
                        .zip(&want)
                        .all(|((_, w), n)| w.eq_ignore_ascii_case(n))
                {
                    let (last_at, last) = win[want.len() - 1];
                    consider(win[0].0, last_at + last.len(), op);
                    break;
                }
            }
        }
        let (i, end, operator) = best.ok_or_else(bad)?;
        let field = s[..i].trim();
        let rest = s[end..].trim();
        if field.is_empty() {
            return Err(bad());
        }
        let value = match (operator.takes_value(), rest.is_empty()) {
            (true, true) => bail!("filter `{s}`: `{operator}` needs a value"),
            (false, false) => bail!("filter `{s}`: `{operator}` takes no value"),
            (true, false) => Some(Value::String(unquote(rest).to_owned())),
            (false, true) => None,
        };
        Ok(Filter {
            field: unquote(field).to_owned(),
            operator,
            value,
        })
    }
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// Sort direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBy {
    pub field: String,
    #[serde(default)]
    pub direction: Direction,
}

impl FromStr for OrderBy {
    type Err = anyhow::Error;
    /// `FIELD [ASC|DESC]` (the CLI's `--order-by`).
    fn from_str(s: &str) -> anyhow::Result<OrderBy> {
        let s = s.trim();
        let (field, direction) = match s.rsplit_once(char::is_whitespace) {
            Some((f, d)) if d.eq_ignore_ascii_case("asc") => (f, Direction::Asc),
            Some((f, d)) if d.eq_ignore_ascii_case("desc") => (f, Direction::Desc),
            _ => (s, Direction::Asc),
        };
        let field = unquote(field.trim());
        if field.is_empty() {
            bail!("order-by `{s}` is not `FIELD [ASC|DESC]`");
        }
        Ok(OrderBy {
            field: field.to_owned(),
            direction,
        })
    }
}

/// A row query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowQuery {
    #[serde(default)]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub order_by: Vec<OrderBy>,
    #[serde(default = "default_max_items")]
    pub max_items: usize,
    #[serde(default)]
    pub offset: usize,
}

fn default_max_items() -> usize {
    DEFAULT_MAX_ITEMS
}

impl Default for RowQuery {
    fn default() -> Self {
        RowQuery {
            filters: vec![],
            order_by: vec![],
            max_items: DEFAULT_MAX_ITEMS,
            offset: 0,
        }
    }
}

/// A column of the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// The engine's type, e.g. `Int64`, `Float64`, `Utf8`.
    #[serde(rename = "type")]
    pub ty: String,
}

/// One page of rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowPage {
    pub dataset: String,
    /// Rows matching the filters (before paging).
    pub total: u64,
    pub offset: usize,
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Map<String, Value>>,
}

/// Run a row query on the dataset `reference` (id or name).
pub async fn rows(ws: &Workspace, reference: &str, q: &RowQuery) -> anyhow::Result<RowPage> {
    let table = StoredTable::resolve(ws, reference)?;
    let ctx = session()?;
    let df = table.open(&ctx).await?;
    let (page, total) = apply(df, q).await?;
    Ok(RowPage {
        dataset: table.record.id,
        total,
        offset: q.offset,
        columns: page.0,
        rows: page.1,
    })
}

type Page = (Vec<ColumnInfo>, Vec<Map<String, Value>>);

/// Filter, count, sort and page `df`.
pub async fn apply(df: DataFrame, q: &RowQuery) -> anyhow::Result<(Page, u64)> {
    if q.max_items > MAX_ITEMS {
        bail!("max_items {} is over the limit of {MAX_ITEMS}", q.max_items);
    }
    if q.filters.len() > MAX_TERMS || q.order_by.len() > MAX_TERMS {
        bail!("at most {MAX_TERMS} filters and {MAX_TERMS} order_by keys");
    }
    let schema: Schema = df.schema().as_arrow().clone();
    let mut predicate: Option<Expr> = None;
    for f in &q.filters {
        let e = filter_expr(&schema, f)?;
        predicate = Some(match predicate {
            Some(p) => p.and(e),
            None => e,
        });
    }
    let df = match predicate {
        Some(p) => df.filter(p).map_err(engine)?,
        None => df,
    };
    let total = df.clone().count().await.map_err(engine)? as u64;
    let mut sort = Vec::new();
    for o in &q.order_by {
        let (c, _) = column(&schema, &o.field)?;
        let asc = o.direction == Direction::Asc;
        // NULLs last either way, as Refuel lists them.
        sort.push(SortExpr::new(c, asc, false));
    }
    let df = if sort.is_empty() {
        df
    } else {
        df.sort(sort).map_err(engine)?
    };
    let df = df.limit(q.offset, Some(q.max_items)).map_err(engine)?;
    let columns = schema
        .fields()
        .iter()
        .map(|f| ColumnInfo {
            name: f.name().clone(),
            ty: f.data_type().to_string(),
        })
        .collect();
    let batches = df.collect().await.map_err(engine)?;
    let mut out = Vec::new();
    {
        let mut w = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, JsonArray>(&mut out);
        for b in &batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    let rows: Vec<Map<String, Value>> = if out.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&out)?
    };
    Ok(((columns, rows), total))
}

fn engine(e: datafusion::error::DataFusionError) -> anyhow::Error {
    anyhow!("{}", one_line(&e.to_string()))
}

/// The column `name` (exact, case-sensitive) and its type.
fn column(schema: &Schema, name: &str) -> anyhow::Result<(Expr, DataType)> {
    match schema.field_with_name(name) {
        Ok(f) => Ok((
            Expr::Column(Column::new_unqualified(name)),
            f.data_type().clone(),
        )),
        Err(_) => {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            bail!("no column `{name}` (columns: {})", names.join(", "))
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn filter_expr(schema: &Schema, f: &Filter) -> anyhow::Result<Expr> {
    let (c, ty) = column(schema, &f.field)?;
    let op = f.operator;
    if !op.takes_value() {
        if f.value.as_ref().is_some_and(|v| !v.is_null()) {
            bail!("filter on `{}`: `{op}` takes no value", f.field);
        }
        return Ok(if op == Op::IsNull {
            c.is_null()
        } else {
            c.is_not_null()
        });
    }
    let text = match &f.value {
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        Some(Value::Null) | None => {
            bail!(
                "filter on `{}`: `{op}` needs a value (use IS NULL for nulls)",
                f.field
            )
        }
        Some(_) => bail!(
            "filter on `{}`: the value must be a string, number or boolean",
            f.field
        ),
    };
    if op.is_pattern() {
        // Refuel: "true if value is in field"; an explicit `%` makes it a
        // LIKE pattern as written.
        let pattern = if text.contains('%') {
            text
        } else {
            format!(
                "%{}%",
                text.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        };
        let target = if is_text(&ty) {
            c
        } else {
            cast(c, DataType::Utf8)
        };
        let p = lit(pattern);
        return Ok(match op {
            Op::Like => target.like(p),
            Op::ILike => target.ilike(p),
            Op::NotLike => target.not_like(p),
            _ => target.not_ilike(p),
        });
    }
    let value = ScalarValue::try_from_string(text.clone(), &ty).map_err(|_| {
        anyhow!(
            "filter on `{}`: `{text}` is not a valid {} value",
            f.field,
            type_noun(&ty)
        )
    })?;
    if value.is_null() {
        bail!(
            "filter on `{}`: `{text}` is not a valid {} value",
            f.field,
            type_noun(&ty)
        );
    }
    let v = lit(value);
    Ok(match op {
        Op::Eq => c.eq(v),
        Op::Ne => c.not_eq(v),
        Op::Lt => c.lt(v),
        Op::Le => c.lt_eq(v),
        Op::Gt => c.gt(v),
        _ => c.gt_eq(v),
    })
}

fn type_noun(t: &DataType) -> String {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "integer".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            "non-negative integer".into()
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "number".into(),
        DataType::Boolean => "boolean (true/false)".into(),
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_from_the_command_line_form() {
        let f: Filter = "score >= 0.5".parse().unwrap();
        assert_eq!((f.field.as_str(), f.operator), ("score", Op::Ge));
        assert_eq!(f.value, Some(Value::String("0.5".into())));
        let f: Filter = "score>=0.5".parse().unwrap();
        assert_eq!((f.field.as_str(), f.operator), ("score", Op::Ge));
        let f: Filter = "note is  not null".parse().unwrap();
        assert_eq!(
            (f.field.as_str(), f.operator, f.value),
            ("note", Op::IsNotNull, None)
        );
        let f: Filter = "text NOT ILIKE %Great%".parse().unwrap();
        assert_eq!(f.operator, Op::NotILike);
        assert_eq!(f.value, Some(Value::String("%Great%".into())));
        // An operator word inside a field name is part of the name.
        let f: Filter = "likes > 3".parse().unwrap();
        assert_eq!((f.field.as_str(), f.operator), ("likes", Op::Gt));
        let f: Filter = "a <> 'x y'".parse().unwrap();
        assert_eq!(
            (f.operator, f.value),
            (Op::Ne, Some(Value::String("x y".into())))
        );
        assert_eq!(
            "label".parse::<Filter>().unwrap_err().to_string(),
            "filter `label` is not `FIELD OPERATOR [VALUE]` (e.g. `score >= 0.5`, `note IS NULL`)"
        );
        assert_eq!(
            "label =".parse::<Filter>().unwrap_err().to_string(),
            "filter `label =`: `=` needs a value"
        );
        assert_eq!(
            "label IS NULL x".parse::<Filter>().unwrap_err().to_string(),
            "filter `label IS NULL x`: `IS NULL` takes no value"
        );
    }

    #[test]
    fn operators_and_directions_read_as_refuel_writes_them() {
        let q: RowQuery = serde_json::from_value(serde_json::json!({
            "filters": [{"field": "a", "operator": "not  ilike", "value": "x"},
                        {"field": "b", "operator": "IS NULL"}],
            "order_by": [{"field": "a", "direction": "DESC"}, {"field": "b"}],
            "max_items": 5
        }))
        .unwrap();
        assert_eq!(q.filters[0].operator, Op::NotILike);
        assert_eq!(q.order_by[0].direction, Direction::Desc);
        assert_eq!(q.order_by[1].direction, Direction::Asc);
        assert_eq!((q.max_items, q.offset), (5, 0));
        let e = serde_json::from_value::<RowQuery>(serde_json::json!({
            "filters": [{"field": "a", "operator": "~", "value": "x"}]
        }))
        .unwrap_err();
        assert!(e.to_string().starts_with("unknown operator `~`"), "{e}");
        let o: OrderBy = "created at desc".parse().unwrap();
        assert_eq!(
            (o.field.as_str(), o.direction),
            ("created at", Direction::Desc)
        );
    }
}
