"""Coordinates: the one datum gridbot stores (WGS-84), China's GCJ-02, and points inside polygons.

Telegram and GPS give WGS-84. Maps and apps in mainland China (WeChat's location messages among them) give
GCJ-02, which is WGS-84 shifted by a published, deliberately irregular function: 300-500 m in a Chinese city,
more than the spacing of its buildings. ``gcj02_to_wgs84`` inverts that shift by iteration to well under a
metre; outside China the two datums coincide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# The Krasovsky 1940 ellipsoid the GCJ-02 shift is defined on.
_SEMI_MAJOR = 6378245.0
_ECCENTRICITY_SQUARED = 0.00669342162296594323
# The inversion stops once a step moves the point less than this (degrees, about a centimetre).
_PRECISION = 1e-7
_MAX_STEPS = 30

Ring = Sequence[Sequence[float]]


def outside_china(latitude: float, longitude: float) -> bool:
    """The rough box outside which GCJ-02 applies no shift."""
    return not (0.8293 <= latitude <= 55.8271 and 72.004 <= longitude <= 137.8347)


def _shift_latitude(x: float, y: float) -> float:
    shift = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    shift += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    shift += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    shift += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return shift


def _shift_longitude(x: float, y: float) -> float:
    shift = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    shift += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    shift += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    shift += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return shift


def wgs84_to_gcj02(latitude: float, longitude: float) -> tuple[float, float]:
    """The GCJ-02 coordinates a Chinese map shows for a WGS-84 point."""
    if outside_china(latitude, longitude):
        return latitude, longitude
    x, y = longitude - 105.0, latitude - 35.0
    d_latitude, d_longitude = _shift_latitude(x, y), _shift_longitude(x, y)
    radians = latitude / 180.0 * math.pi
    magic = 1 - _ECCENTRICITY_SQUARED * math.sin(radians) ** 2
    root = math.sqrt(magic)
    d_latitude = (d_latitude * 180.0) / ((_SEMI_MAJOR * (1 - _ECCENTRICITY_SQUARED)) / (magic * root) * math.pi)
    d_longitude = (d_longitude * 180.0) / (_SEMI_MAJOR / root * math.cos(radians) * math.pi)
    return latitude + d_latitude, longitude + d_longitude


def gcj02_to_wgs84(latitude: float, longitude: float) -> tuple[float, float]:
    """The WGS-84 point a GCJ-02 location (a WeChat location message) stands for."""
    guess = latitude, longitude
    for _step in range(_MAX_STEPS):
        shifted = wgs84_to_gcj02(*guess)
        error = shifted[0] - latitude, shifted[1] - longitude
        guess = guess[0] - error[0], guess[1] - error[1]
        if abs(error[0]) < _PRECISION and abs(error[1]) < _PRECISION:
            break
    return guess


# --- polygons (GeoJSON: rings of [longitude, latitude]) ---------------------------------------------------------


def polygons_of(geometry: dict[str, Any]) -> list[list[Ring]]:
    """The polygons of a GeoJSON Polygon or MultiPolygon, each a list of rings (the outer ring first)."""
    if geometry.get("type") == "Polygon":
        return [geometry["coordinates"]]
    if geometry.get("type") == "MultiPolygon":
        return list(geometry["coordinates"])
    raise ValueError(f"a boundary is a Polygon or a MultiPolygon, not {geometry.get('type')!r}")


def _in_ring(ring: Ring, latitude: float, longitude: float) -> bool:
    """Ray casting: whether the point lies inside the closed ring."""
    inside = False
    previous = ring[-1]
    for point in ring:
        (x1, y1), (x2, y2) = (previous[0], previous[1]), (point[0], point[1])
        if (y1 > latitude) != (y2 > latitude):
            crossing = x1 + (latitude - y1) * (x2 - x1) / (y2 - y1)
            if longitude < crossing:
                inside = not inside
        previous = point
    return inside


def contains_point(geometry: dict[str, Any], latitude: float, longitude: float) -> bool:
    """Whether the point lies inside the geometry (inside an outer ring and in none of its holes)."""
    for rings in polygons_of(geometry):
        outer, holes = rings[0], rings[1:]
        if _in_ring(outer, latitude, longitude) and not any(_in_ring(hole, latitude, longitude) for hole in holes):
            return True
    return False


def bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    """``(min_latitude, max_latitude, min_longitude, max_longitude)`` of the geometry's outer rings."""
    points = [point for rings in polygons_of(geometry) for point in rings[0]]
    latitudes, longitudes = [point[1] for point in points], [point[0] for point in points]
    return min(latitudes), max(latitudes), min(longitudes), max(longitudes)
