package cn.wangge.core.tests

import cn.wangge.core.ApiException
import cn.wangge.core.Gender
import cn.wangge.core.GridKind
import cn.wangge.core.NewResident
import cn.wangge.core.RecordStatus
import cn.wangge.core.Relation
import cn.wangge.core.ResidenceType
import org.junit.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

/** Captures and queries of the register on one device, no server. */
class RegisterTest {
    @Test
    fun capturedHouseholdAndResidentReadBackWithIdNumberDerivedFields(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        assertEquals(FULL_TIME_WORKER, store.worker())
        val grid = store.grids().single()
        assertEquals(GRID, grid.code)
        assertEquals(GRID_NAME, grid.name)
        assertEquals(GridKind.COMMUNITY, grid.kind)
        assertTrue(grid.active)

        val ids = store.captureHousehold()

        val building = store.building(ids.building)
        assertEquals("长堤花园3栋", building.name)
        assertEquals(GRID, building.grid)
        assertEquals(7, building.floors)
        assertEquals(RecordStatus.Active, building.status)

        val household = store.household(ids.household)
        assertEquals(ids.building, household.building)
        assertEquals("302", household.room)
        assertEquals(ResidenceType.REGISTERED, household.residenceType)

        val resident = store.resident(ids.resident)
        assertEquals(RESIDENT_NAME, resident.name)
        assertEquals(GRID, resident.grid)
        assertEquals(ids.household, resident.household)
        assertEquals(Relation.HEAD, resident.relation)
        assertEquals(Gender.FEMALE, resident.gender, "gender from the ID number's 17th digit")
        assertEquals(RecordStatus.Active, resident.status)
        val sensitive = assertNotNull(resident.sensitive, "this device holds the grid's sensitive data")
        assertEquals("1101**********002X", sensitive.idNumber, "shown masked")
        assertEquals("138****8000", sensitive.phone, "shown masked")
        assertEquals("1949-12-31", sensitive.birthDate, "birth date from the ID number")
        val full = store.revealResident(ids.resident, "核实身份")
        assertEquals(ID_NUMBER, full.idNumber)
        assertEquals(PHONE, full.phone)
        assertEquals(listOf("核实身份"), store.fullViews(GRID, 0L, Long.MAX_VALUE).map { it.reason })

        assertEquals(listOf(ids.resident), store.residentsOfHousehold(ids.household).map { it.id })
    }

    @Test
    fun householdListShowsTheHeadAndOneResident(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        val ids = store.captureHousehold()

        val line = store.listHouseholds(GRID).single()
        assertEquals(ids.household, line.id)
        assertEquals(ids.building, line.building)
        assertEquals("长堤花园3栋", line.buildingName)
        assertEquals("302", line.room)
        assertEquals(RESIDENT_NAME, line.headName)
        assertEquals(1, line.nResidents)
    }

    @Test
    fun residentIsFoundByPhoneTailAndByTwoCharacterNameFragment(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        val ids = store.captureHousehold()
        // Another resident, who must not match either query.
        store.addResident(
            GRID,
            NewResident(name = "王建国", phone = "13912345678", relation = Relation.OTHER, residenceType = ResidenceType.MIGRANT),
        )

        val byPhone = store.searchResidents("8000", 10)
        assertEquals(listOf(ids.resident), byPhone.map { it.id }, "by the phone's last 4 digits")
        assertEquals(RESIDENT_NAME, byPhone.single().name)
        assertEquals(ids.household, byPhone.single().household)

        val byName = store.searchResidents("秀兰", 10)
        assertEquals(listOf(ids.resident), byName.map { it.id }, "by a 2-character fragment of the name")
    }

    @Test
    fun invalidIdNumberRaisesInvalidInputOnIdNumberAndAddsNothing(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        val ids = store.captureHousehold()
        val households = store.listHouseholds(GRID)

        val error = assertFailsWith<ApiException.InvalidInput> {
            store.addResident(
                GRID,
                NewResident(
                    household = ids.household,
                    name = "张伟",
                    idNumber = "110105194912310021", // wrong check character
                    relation = Relation.SPOUSE,
                    residenceType = ResidenceType.REGISTERED,
                ),
            )
        }
        assertEquals("id_number", error.field)
        assertTrue(error.reason.isNotBlank())
        assertTrue("110105194912310021" !in error.reason, "no personal data in the message: ${error.reason}")

        assertEquals(households, store.listHouseholds(GRID), "the household list is unchanged")
        assertEquals(1, store.listHouseholds(GRID).single().nResidents)
        assertEquals(emptyList(), store.searchResidents("张伟", 10))
    }

    @Test
    fun unknownResidentIdRaisesNotFoundAndMalformedIdRaisesInvalidInput(): Unit = TempStore(FULL_TIME_WORKER).use { temp ->
        val store = temp.store
        store.addGrid(GRID, GRID_NAME, GridKind.COMMUNITY, true)
        store.captureHousehold()
        val before = store.listHouseholds(GRID)

        assertFailsWith<ApiException.NotFound> { store.resident("0190f5b2-7c1e-7a3b-9d4e-5f6a7b8c9d0e") }
        val malformed = assertFailsWith<ApiException.InvalidInput> { store.resident("not-a-uuid") }
        assertEquals("resident_id", malformed.field)
        assertFailsWith<ApiException.InvalidInput> { store.household("42") }
        assertFailsWith<ApiException.NotFound> { store.incident("0190f5b2-7c1e-7a3b-9d4e-5f6a7b8c9d0e") }

        assertEquals(before, store.listHouseholds(GRID), "the store is unchanged")
        assertEquals(1, store.listHouseholds(GRID).size)
    }
}
