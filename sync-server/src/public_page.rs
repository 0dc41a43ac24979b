//! The public grid card as a web page (`GET /public/grids/{code}`), for the QR code on a
//! grid's notice board: plain HTML5 readable on a phone, no script, no external
//! resource, every value escaped. It shows exactly the card ([`GridCard`]): name, kind
//! and code, the area with a small drawing of the boundary, the posted staff with their
//! role and phone, and the supervision phone.

use std::fmt::Write;

use html_escape::{encode_double_quoted_attribute as attribute, encode_text as text};
use wangge_core::card::{GridCard, dial_uri};
use wangge_core::reference::PostedContact;

/// How long browsers and proxies may keep a page: cards change rarely, and a notice
/// board's QR code is scanned by many phones.
pub const CACHE_CONTROL: &str = "public, max-age=300";

/// No script and nothing from elsewhere, even if a value ever slipped through
/// unescaped: only the inline stylesheet (and the inline SVG, which is markup).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'";

const STYLE: &str = "\
body{margin:0 auto;max-width:40rem;padding:1rem;font:1rem/1.6 system-ui,-apple-system,\"PingFang SC\",\
\"Microsoft YaHei\",sans-serif;color:#1b1b1b;background:#fff}\
h1{font-size:1.45rem;margin:.1rem 0}h2{font-size:1.05rem;margin:0 0 .3rem}\
.note,.role,footer{color:#555}.note{margin:0;font-size:.9rem}\
section{border-top:1px solid #ddd;margin-top:1rem;padding-top:.6rem}\
ul{list-style:none;margin:0;padding:0}li{padding:.35rem 0}\
.role{font-size:.85rem;margin-left:.4rem}\
a{color:#0b57d0;font-size:1.1rem;text-decoration:none;display:inline-block;padding:.15rem 0}\
svg{display:block;width:100%;max-width:18rem;height:auto;margin:.4rem 0}\
footer{font-size:.8rem;margin-top:1.5rem}";

/// The page of one grid's card.
pub fn grid_page(card: &GridCard) -> String {
    let mut page = String::with_capacity(4096);
    head(&mut page, &format!("{} · 网格公示", card.name));
    let _ = writeln!(
        page,
        "<header><p class=\"note\">网格公示</p><h1>{}</h1><p class=\"note\">{} · 网格编码 {}</p></header>",
        text(&card.name),
        text(&card.kind_label),
        text(card.code.as_str()),
    );

    page.push_str("<section><h2>区域范围</h2>\n");
    match card.area_label() {
        Some(area) => {
            let _ = writeln!(page, "<p>面积约 {}</p>", text(&area));
        }
        None => page.push_str("<p>边界未公布</p>\n"),
    }
    if let Some(svg) = boundary_svg(&card.boundary_rings()) {
        page.push_str(&svg);
    }
    page.push_str("</section>\n");

    staff(&mut page, "网格长", &card.leaders);
    staff(&mut page, "网格员", &card.workers);

    page.push_str("<section><h2>监督电话</h2>\n");
    match &card.supervision_phone {
        Some(phone) => {
            let _ = writeln!(page, "<p>{}</p>", phone_link(phone));
        }
        None => page.push_str("<p>未公布</p>\n"),
    }
    page.push_str("</section>\n");
    page.push_str(
        "<footer>网格名称、区域范围、网格员姓名及联系方式、监督电话依规公示；内容变更时及时更新。</footer>\n",
    );
    page.push_str("</body>\n</html>\n");
    page
}

/// The page for a grid that is not there (or a code that is not one).
pub fn not_found_page() -> String {
    let mut page = String::new();
    head(&mut page, "未找到该网格");
    page.push_str(
        "<h1>未找到该网格</h1>\n<p>请核对公示牌上的二维码或网址；网格调整后，请以最新公示为准。</p>\n</body>\n</html>\n",
    );
    page
}

/// The page when the server could not answer.
pub fn error_page() -> String {
    let mut page = String::new();
    head(&mut page, "暂时无法显示");
    page.push_str("<h1>暂时无法显示</h1>\n<p>请稍后再试。</p>\n</body>\n</html>\n");
    page
}

fn head(page: &mut String, title: &str) {
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        text(title)
    );
}

fn staff(page: &mut String, heading: &str, contacts: &[PostedContact]) {
    let _ = writeln!(page, "<section><h2>{heading}</h2>");
    if contacts.is_empty() {
        page.push_str("<p>未公布</p>\n");
    } else {
        page.push_str("<ul>\n");
        for contact in contacts {
            let _ = write!(
                page,
                "<li>{}<span class=\"role\">{}</span><br>",
                text(&contact.name),
                text(contact.role_label())
            );
            match &contact.phone {
                Some(phone) => page.push_str(&phone_link(phone)),
                None => page.push_str("<span class=\"note\">电话未公布</span>"),
            }
            page.push_str("</li>\n");
        }
        page.push_str("</ul>\n");
    }
    page.push_str("</section>\n");
}

fn phone_link(phone: &str) -> String {
    format!("<a href=\"{}\">{}</a>", attribute(&dial_uri(phone)), text(phone))
}

/// The longer side of the drawing, in SVG units.
const SVG_SIZE: f64 = 300.0;

/// A small drawing of the boundary: longitude scaled by the cosine of the middle
/// latitude (so a grid keeps its shape), north up, holes cut out (even-odd fill), in
/// whole units (about a pixel on a phone): a point that rounds to the previous one is
/// dropped, which bounds the page's size by the drawing's resolution rather than by the
/// survey's.
fn boundary_svg(rings: &[Vec<(f64, f64)>]) -> Option<String> {
    let points = || rings.iter().flatten();
    let (mut west, mut east, mut south, mut north) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(lng, lat) in points() {
        west = west.min(lng);
        east = east.max(lng);
        south = south.min(lat);
        north = north.max(lat);
    }
    let x_scale = ((south + north) / 2.0).to_radians().cos();
    let (width, height) = ((east - west) * x_scale, north - south);
    if !(width > 0.0 && height > 0.0) {
        return None;
    }
    let scale = SVG_SIZE / width.max(height);
    let mut path = String::new();
    for ring in rings {
        let mut points: Vec<(i64, i64)> = ring
            .iter()
            .map(|&(lng, lat)| {
                (((lng - west) * x_scale * scale).round() as i64, ((north - lat) * scale).round() as i64)
            })
            .collect();
        points.dedup();
        // `Z` closes the ring.
        if points.len() > 1 && points.first() == points.last() {
            points.pop();
        }
        for (i, (x, y)) in points.into_iter().enumerate() {
            let _ = write!(path, "{}{x} {y}", if i == 0 { 'M' } else { 'L' });
        }
        path.push('Z');
    }
    // A margin for the stroke.
    Some(format!(
        "<svg viewBox=\"-4 -4 {} {}\" role=\"img\" aria-label=\"网格边界示意图\">\
         <path d=\"{path}\" fill=\"#dbe8fb\" fill-rule=\"evenodd\" stroke=\"#0b57d0\" stroke-width=\"2\" \
         stroke-linejoin=\"round\"/></svg>\n",
        (width * scale).round() as i64 + 8,
        (height * scale).round() as i64 + 8,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use wangge_core::model::GridCode;
    use wangge_core::reference::GridMeta;

    use super::*;

    fn contact(role: &str, name: &str, phone: Option<&str>) -> PostedContact {
        PostedContact { role: role.into(), name: name.into(), phone: phone.map(str::to_owned) }
    }

    fn card(meta: &GridMeta) -> GridCard {
        GridCard::from_meta(GridCode::parse_default("440703001001001").unwrap(), meta)
    }

    const SQUARE: &str = r#"{"type":"Polygon","coordinates":[[[113.08,22.58],[113.09,22.58],[113.09,22.59],[113.08,22.59],[113.08,22.58]]]}"#;

    #[test]
    fn the_page_shows_the_card_and_escapes_every_value() {
        let meta = GridMeta {
            name: "长堤<社区>第1网格".into(),
            kind: "community".into(),
            boundary: Some(SQUARE.into()),
            supervision_phone: Some("0750-3123456".into()),
            staff: vec![
                contact("grid_leader", "<b>李\"网格长\"</b>", Some("13800000001")),
                contact("full_time_worker", "陈专职&", Some("010-62345678-801")),
                contact("part_time_worker", "王兼职", None),
            ],
        };
        let page = grid_page(&card(&meta));
        assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"zh-CN\">"), "{page}");
        assert!(page.contains("<meta charset=\"utf-8\">"));
        assert!(page.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
        assert!(page.contains("<title>长堤&lt;社区&gt;第1网格 · 网格公示</title>"));
        assert!(page.contains("<h1>长堤&lt;社区&gt;第1网格</h1>"));
        assert!(page.contains("城市社区网格 · 网格编码 440703001001001"));
        assert!(page.contains("&lt;b&gt;李\"网格长\"&lt;/b&gt;<span class=\"role\">网格长</span>"), "{page}");
        assert!(!page.contains("<b>"), "no markup from a name");
        assert!(page.contains("陈专职&amp;<span class=\"role\">专职网格员</span>"));
        assert!(page.contains("<a href=\"tel:13800000001\">13800000001</a>"));
        assert!(page.contains("<a href=\"tel:01062345678,801\">010-62345678-801</a>"));
        assert!(
            page.contains("王兼职<span class=\"role\">兼职网格员</span><br><span class=\"note\">电话未公布</span>")
        );
        assert!(page.contains("<h2>监督电话</h2>\n<p><a href=\"tel:07503123456\">0750-3123456</a></p>"));
        assert!(page.contains("面积约 1.14 平方千米"));
        assert!(page.contains("<svg ") && page.contains("fill-rule=\"evenodd\""));
        assert!(!page.contains("<script"));
        assert!(!page.contains("http"), "no external resource");
    }

    #[test]
    fn a_card_without_staff_boundary_or_phone_says_so() {
        let page =
            grid_page(&card(&GridMeta {
                name: "棠下村第1网格".into(), kind: "village".into(), ..GridMeta::default()
            }));
        assert!(page.contains("农村网格"));
        assert!(page.contains("<p>边界未公布</p>"));
        assert_eq!(page.matches("<p>未公布</p>").count(), 3, "leaders, workers, supervision phone: {page}");
        assert!(!page.contains("<svg"));
    }

    #[test]
    fn the_boundary_is_drawn_north_up_with_its_shape_kept() {
        let svg =
            boundary_svg(&[vec![(113.08, 22.58), (113.09, 22.58), (113.09, 22.59), (113.08, 22.59), (113.08, 22.58)]])
                .unwrap();
        // 0.01° of longitude is cos(22.585°) ≈ 0.923 of 0.01° of latitude: 277 × 300.
        assert!(svg.contains("viewBox=\"-4 -4 285 308\""), "{svg}");
        assert!(svg.contains("d=\"M0 300L277 300L277 0L0 0Z\""), "{svg}");
        assert_eq!(boundary_svg(&[vec![(113.08, 22.58); 4]]), None, "no area, no drawing");
        assert_eq!(boundary_svg(&[]), None);
    }

    #[test]
    fn points_closer_than_the_drawing_shows_are_dropped() {
        let mut ring = vec![(113.08, 22.58)];
        ring.extend((0..1000).map(|i| (113.08 + 0.01 * f64::from(i) / 1000.0, 22.58)));
        ring.extend([(113.09, 22.58), (113.09, 22.59), (113.08, 22.58)]);
        let svg = boundary_svg(&[ring]).unwrap();
        let n_points = svg.matches('L').count() + 1;
        assert!(n_points < 300, "{n_points}");
    }
}
