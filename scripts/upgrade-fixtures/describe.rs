// What a device store holds, as JSON: the same function (this file, `include!`d) runs in
// the generator, built at the previous version's commit, and in the upgrade tests, built
// at the current one, so that the two descriptions compare field by field. It reads only
// the projection (never the documents), so it leaves pending captures as they are.
//
// It uses only the read API that both versions have: keep it that way, or give the
// generator its own copy when the API changes.

fn describe_store(store: &wangge_core::Store, grid: &wangge_core::model::GridCode) -> serde_json::Value {
    use serde_json::json;
    let text = |value: Option<&str>| value.map(str::to_owned);
    let mut buildings: Vec<serde_json::Value> = store
        .list_buildings(grid)
        .expect("the buildings")
        .iter()
        .map(|building| {
            json!({
                "id": building.id.to_string(),
                "name": building.name.as_str(),
                "address": building.address.as_str(),
                "floors": building.floors,
                "units": building.units,
                "usage": format!("{:?}", building.usage),
                "status": format!("{:?}", building.status),
            })
        })
        .collect();
    buildings.sort_by_key(|building| building["id"].as_str().unwrap_or_default().to_owned());
    let mut households = Vec::new();
    for summary in store.list_households(grid).expect("the households") {
        let household = store.household(summary.id).expect("a household");
        let mut residents: Vec<serde_json::Value> = store
            .residents_of_household(household.id)
            .expect("its residents")
            .iter()
            .map(|resident| {
                let sensitive = resident.sensitive.as_ref();
                json!({
                    "id": resident.id.to_string(),
                    "name": resident.name.as_str(),
                    "gender": format!("{:?}", resident.gender),
                    "relation": format!("{:?}", resident.relation),
                    "residence_type": format!("{:?}", resident.residence_type),
                    "status": format!("{:?}", resident.status),
                    "id_number": text(sensitive.and_then(|s| s.id_number.as_ref()).map(|id| id.as_str())),
                    "phone": text(sensitive.and_then(|s| s.phone.as_ref()).map(|phone| phone.as_str())),
                    "birth_date": sensitive.and_then(|s| s.birth_date).map(|date| date.to_string()),
                    "tags": sensitive.map(|s| s.tags.iter().map(|tag| format!("{tag:?}")).collect::<Vec<_>>()),
                })
            })
            .collect();
        residents.sort_by_key(|resident| resident["id"].as_str().unwrap_or_default().to_owned());
        households.push(json!({
            "id": household.id.to_string(),
            "building": household.building.map(|id| id.to_string()),
            "room": text(household.room.as_ref().map(|room| room.as_str())),
            "address": text(household.address.as_ref().map(|address| address.as_str())),
            "residence_type": format!("{:?}", household.residence_type),
            "status": format!("{:?}", household.status),
            "residents": residents,
        }));
    }
    households.sort_by_key(|household| household["id"].as_str().unwrap_or_default().to_owned());
    let mut organizations: Vec<serde_json::Value> = store
        .list_organizations(grid)
        .expect("the organizations")
        .iter()
        .map(|organization| {
            json!({
                "id": organization.id.to_string(),
                "name": organization.name.as_str(),
                "uscc": text(organization.uscc.as_ref().map(|uscc| uscc.as_str())),
                "address": organization.address.as_str(),
            })
        })
        .collect();
    organizations.sort_by_key(|organization| organization["id"].as_str().unwrap_or_default().to_owned());
    let now = chrono::Utc::now().fixed_offset();
    let mut incidents: Vec<serde_json::Value> = store
        .incidents(&wangge_core::IncidentFilter::default(), now)
        .expect("the incidents")
        .iter()
        .map(|incident| {
            let timeline = store.incident_timeline(incident.id).expect("a timeline");
            json!({
                "id": incident.id.to_string(),
                "title": incident.title,
                "catalog_item": incident.catalog_item,
                "phase": format!("{:?}", incident.phase),
                "reporter": incident.reporter,
                "lead_department": incident.lead_department.as_ref().map(|code| format!("{code:?}")),
                "resolved_on_spot": incident.resolved_on_spot,
                "timeline": timeline.len(),
            })
        })
        .collect();
    incidents.sort_by_key(|incident| incident["id"].as_str().unwrap_or_default().to_owned());
    json!({
        "grid": grid.as_str(),
        "buildings": buildings,
        "households": households,
        "organizations": organizations,
        "incidents": incidents,
    })
}
