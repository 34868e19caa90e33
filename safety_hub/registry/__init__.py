"""Plant registry: park → enterprise → hazard source → unit → equipment → tag (位号).

``load_plant(path)`` reads a YAML registry (format in docs/registry.md), validates it (every
problem reported at once as ``file:line:col: message``, raised as ``RegistryError``) and returns
an immutable ``Plant``. ``default_plant_path()`` is the bundled sample park.
"""

from safety_hub.registry.gases import BUILTIN_GASES, Gas, mg_m3_to_ppm, ppm_to_mg_m3
from safety_hub.registry.gb18218 import alpha_for, assess, beta_for, grade_for
from safety_hub.registry.loader import default_plant_path, load_plant, parse_plant
from safety_hub.registry.model import (
    ChemicalInfo,
    EnterpriseInfo,
    HazardSourceInfo,
    OutOfServiceInfo,
    Plant,
    TagInfo,
    ZoneInfo,
)

__all__ = [
    "BUILTIN_GASES",
    "ChemicalInfo",
    "EnterpriseInfo",
    "Gas",
    "HazardSourceInfo",
    "OutOfServiceInfo",
    "Plant",
    "TagInfo",
    "ZoneInfo",
    "alpha_for",
    "assess",
    "beta_for",
    "default_plant_path",
    "grade_for",
    "load_plant",
    "mg_m3_to_ppm",
    "parse_plant",
    "ppm_to_mg_m3",
]
