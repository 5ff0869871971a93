"""A simulated plant: a stand-in for the MDSplus Redis action dispatcher and
its action servers, driven by a plant description instead of an MDSplus tree,
so the console can be run and tested against live, moving state."""
