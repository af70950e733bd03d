"""Meshes of twin.viz.mesh: exact counts, ids and arrays (no rendering needed)."""

import numpy as np
import pytest

import twin

pv = pytest.importorskip("pyvista")

from twin.errors import ResultsError  # noqa: E402
from twin.viz.mesh import city_mesh, network_arrays, node_points_mesh, points_mesh, zones_mesh  # noqa: E402


def cells(mesh):
    """Point ids of each line cell, as lists."""
    lines, out, i = mesh.lines, [], 0
    while i < len(lines):
        n = lines[i]
        out.append(lines[i + 1:i + 1 + n].tolist())
        i += n + 1
    return out


def test_grid_mesh_links_are_line_cells_on_shared_node_points(grid_city):
    c = grid_city
    mesh = city_mesh(c)
    assert (mesh.n_cells, mesh.n_points, mesh.n_lines) == (48, 16, 48)
    assert cells(mesh) == [[int(a), int(b)] for a, b in zip(c.link_from_idx, c.link_to_idx)]
    np.testing.assert_array_equal(mesh.points[:, 0], c.x_m)
    np.testing.assert_array_equal(mesh.points[:, 1], c.y_m)
    np.testing.assert_array_equal(mesh.points[:, 2], 0.0)
    np.testing.assert_array_equal(mesh.point_data["node_idx"], np.arange(16))
    np.testing.assert_array_equal(mesh.cell_data["link_idx"], np.arange(48))
    assert mesh.cell_data["link_idx"].dtype == np.int32
    np.testing.assert_array_equal(mesh.cell_data["lanes"], c.lanes)
    np.testing.assert_array_equal(mesh.cell_data["length_m"], c.length_m)
    np.testing.assert_array_equal(mesh.cell_data["free_flow_time_s"], c.free_flow_time_s)
    np.testing.assert_array_equal(mesh.cell_data["road_class"], c.road_class)
    assert list(mesh.field_data["road_class_names"]) == list(c.road_class_names) == ["arterial", "local"]


def test_offset_moves_each_link_to_its_right_by_offset_m(grid_city):
    c = grid_city
    mesh = city_mesh(c, offset_m=5.0)
    assert (mesh.n_cells, mesh.n_points) == (48, 96)
    assert cells(mesh) == [[2 * k, 2 * k + 1] for k in range(48)]
    dx = c.x_m[c.link_to_idx] - c.x_m[c.link_from_idx]
    dy = c.y_m[c.link_to_idx] - c.y_m[c.link_from_idx]
    length = np.hypot(dx, dy)
    right = np.column_stack([dy / length, -dx / length])
    start = np.column_stack([c.x_m[c.link_from_idx], c.y_m[c.link_from_idx]]) + 5.0 * right
    np.testing.assert_allclose(mesh.points[0::2, :2], start, atol=1e-9)
    np.testing.assert_array_equal(mesh.point_data["node_idx"][0::2], c.link_from_idx)
    np.testing.assert_array_equal(mesh.point_data["node_idx"][1::2], c.link_to_idx)
    with pytest.raises(ValueError, match=r"offset_m has shape \(3,\)"):
        city_mesh(c, offset_m=[1.0, 2.0, 3.0])


def test_tubes_keep_link_arrays_and_widen_with_lanes(grid_city):
    c = grid_city
    tubes = city_mesh(c, tubes=True, tube_radius_m=4.0)
    link = tubes.cell_data["link_idx"]
    np.testing.assert_array_equal(np.unique(link), np.arange(48))
    np.testing.assert_array_equal(tubes.cell_data["lanes"], c.lanes[link])
    # The grid's edge links run along x = -750 .. 750; a 2-lane tube reaches 8 m beyond.
    assert tubes.bounds[0] == pytest.approx(-758.0, abs=1e-6)
    with pytest.raises(ValueError, match="tube_radius_m"):
        city_mesh(c, tubes=True, tube_radius_m=0.0)


def test_polyline_geometry_becomes_polyline_cells():
    c = twin.load_city("hefei-baohe")
    mesh = city_mesh(c)
    counts = np.diff(c.geom_indptr)
    n_interior = int((counts - 2).sum())
    assert (mesh.n_cells, mesh.n_points) == (c.n_links, c.n_nodes + n_interior)
    ids = cells(mesh)
    assert [len(i) for i in ids] == counts.tolist()
    assert [i[0] for i in ids] == c.link_from_idx.tolist()
    assert [i[-1] for i in ids] == c.link_to_idx.tolist()
    k = int(np.argmax(counts))
    interior = c.geom_x_m[c.geom_indptr[k] + 1:c.geom_indptr[k + 1] - 1]
    np.testing.assert_array_equal(mesh.points[ids[k][1:-1], 0], interior)
    np.testing.assert_array_equal(mesh.point_data["node_idx"][c.n_nodes:], -1)


def test_results_file_alone_gives_the_same_mesh(grid_city, grid_results):
    from_city, from_file = city_mesh(grid_city), city_mesh(grid_results)
    np.testing.assert_array_equal(from_file.points, from_city.points)
    np.testing.assert_array_equal(from_file.lines, from_city.lines)
    for name in ("link_idx", "lanes", "length_m", "road_class", "free_flow_time_s"):
        np.testing.assert_array_equal(from_file.cell_data[name], from_city.cell_data[name])
    with twin.open_results(grid_results) as res:
        net = network_arrays(res)
    np.testing.assert_array_equal(net.capacity_veh_per_h, grid_city.capacity_veh_per_h)
    np.testing.assert_array_equal(net.zone_of_node, grid_city.zone_of_node)
    assert net.name == "grid_4x4"


def test_results_without_network_tables_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.h5"
    with twin.ResultsWriter(path):
        pass
    with pytest.raises(ResultsError, match=r"no /network/nodes and no /network/links table.*write_network"):
        city_mesh(path)
    with pytest.raises(TypeError, match="expected a twin.City"):
        city_mesh(42)


def test_zones_are_convex_hulls_of_their_nodes(grid_city):
    flat = zones_mesh(grid_city)
    # grid:4x4 has four 2x2-node districts: four quads.
    assert (flat.n_cells, flat.n_points) == (4, 16)
    np.testing.assert_array_equal(flat.cell_data["zone_idx"], [0, 1, 2, 3])
    zone0 = flat.extract_cells(0)
    assert zone0.bounds[:4] == pytest.approx((-750.0, -250.0, -750.0, -250.0))
    values = np.array([1.0, 2.0, 4.0, 0.0])
    tall = zones_mesh(grid_city, values=values, extrude_m=400.0)
    # three extruded prisms (top, 4 sides, bottom) and one flat zone (value 0)
    assert tall.n_cells == 3 * 6 + 1
    np.testing.assert_array_equal(np.unique(tall.cell_data["zone_idx"]), [0, 1, 2, 3])
    heights = [tall.extract_cells(np.flatnonzero(tall.cell_data["zone_idx"] == z)).bounds[5] for z in range(4)]
    assert heights == pytest.approx([100.0, 200.0, 400.0, 0.0])
    np.testing.assert_array_equal(tall.cell_data["value"], values[tall.cell_data["zone_idx"]])
    with pytest.raises(ValueError, match="extrude_m needs values"):
        zones_mesh(grid_city, extrude_m=10.0)


def test_points_with_values():
    pts = points_mesh([0.0, 100.0, 250.0], [0.0, 50.0, -20.0], {"occupancy": [3, 7, 0], "beds": [10, 20, 5]})
    assert (pts.n_points, pts.n_cells) == (3, 3)
    np.testing.assert_array_equal(pts.points[:, :2], [[0, 0], [100, 50], [250, -20]])
    np.testing.assert_array_equal(pts.point_data["occupancy"], [3, 7, 0])
    np.testing.assert_array_equal(pts.point_data["point_idx"], [0, 1, 2])
    with pytest.raises(ValueError, match="one per point"):
        points_mesh([0.0, 1.0], [0.0, 1.0], [1.0])


def test_node_points_sit_on_their_nodes(grid_city):
    pts = node_points_mesh(grid_city, [5, 10], [0.25, 0.9], name="occupancy")
    np.testing.assert_array_equal(pts.points[:, 0], grid_city.x_m[[5, 10]])
    np.testing.assert_array_equal(pts.point_data["node_idx"], [5, 10])
    np.testing.assert_array_equal(pts.point_data["occupancy"], [0.25, 0.9])
    with pytest.raises(ValueError, match=r"node_idx\[0\] = 16; expected a node index in \[0, 16\)"):
        node_points_mesh(grid_city, [16])
