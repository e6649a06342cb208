//! The auditors' chart, drawn on the server as SVG (no script, nothing from elsewhere): one line
//! a series, one point a UTC day, with its totals in words for those who do not see it.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use maud::{html, Markup};
use warden_projections::queries::audit_log::Series;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 34.0;

fn look(series: Series) -> (&'static str, &'static str, &'static str) {
    match series {
        Series::SignIns => ("Sign-ins", "#0b5cad", ""),
        Series::Failures => ("Failed checks", "#b35c00", "6 3"),
        Series::Locks => ("Lock-outs", "#a4161a", "2 3"),
        Series::Revocations => ("Revocations", "#11643a", "10 4"),
    }
}

/// `days` days ending `today`, from per-day counts.
pub fn daily(counts: &HashMap<(NaiveDate, Series), i64>, today: NaiveDate, days: i64) -> Markup {
    let dates: Vec<NaiveDate> = (0..days)
        .map(|back| today - Duration::days(days - 1 - back))
        .collect();
    let count = |d: &NaiveDate, s: Series| counts.get(&(*d, s)).copied().unwrap_or(0);
    let top = Series::ALL
        .iter()
        .flat_map(|s| dates.iter().map(move |d| count(d, *s)))
        .max()
        .unwrap_or(0)
        .max(1);
    let step = (WIDTH - LEFT - RIGHT) / (days - 1).max(1) as f64;
    let x = |i: usize| LEFT + step * i as f64;
    let y = |n: i64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - n as f64 / top as f64);
    let totals: Vec<String> = Series::ALL
        .iter()
        .map(|s| {
            let total: i64 = dates.iter().map(|d| count(d, *s)).sum();
            format!("{} {total}", look(*s).0.to_lowercase())
        })
        .collect();
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width="100%" role="img" aria-labelledby="chart-name chart-desc" {
                title id="chart-name" { "Sign-ins, failed checks, lock-outs and revocations per day" }
                desc id="chart-desc" { "Over the last " (days) " days: " (totals.join(", ")) "." }
                @for tick in [0, top / 2, top] {
                    line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(tick)) y2=(y(tick)) stroke="#d0d5db" {}
                    text x=(LEFT - 6.0) y=(y(tick) + 4.0) text-anchor="end" font-size="11" fill="#4f5863" { (tick) }
                }
                @for (i, date) in dates.iter().enumerate() {
                    @if i % 7 == 0 || (i + 1 == dates.len() && i % 7 > 3) {
                        text x=(x(i)) y=(HEIGHT - 12.0) text-anchor="middle" font-size="11" fill="#4f5863" { (date.format("%b %-d")) }
                    }
                }
                @for series in Series::ALL {
                    @let (_, colour, dashes) = look(series);
                    @let points: Vec<String> = dates.iter().enumerate().map(|(i, d)| format!("{:.1},{:.1}", x(i), y(count(d, series)))).collect();
                    polyline points=(points.join(" ")) fill="none" stroke=(colour) stroke-width="2" stroke-dasharray=(dashes) {}
                }
            }
            figcaption.legend {
                @for series in Series::ALL {
                    @let (name, colour, _) = look(series);
                    span.key { svg width="18" height="10" aria-hidden="true" { rect width="18" height="10" fill=(colour) {} } " " (name) }
                }
                p.meta id="chart-totals" { "Totals: " (totals.join(", ")) "." }
            }
        }
    }
}
