"""Resources per module (boards.breakdown): the script rewrite, the hierarchical sums, and one
real Yosys run on a two-module design."""

# amaranth: UnusedElaboratable=no

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from boards.breakdown import breakdown, breakdown_script, format_breakdown, module_totals
from boards.build import tool_env

SCRIPT = """read_rtlil kwshw.il
proc
synth_ice40 -dsp -top kwshw
write_json kwshw.json
"""


def test_script_keeps_the_hierarchy_and_writes_statistics():
    text = breakdown_script(SCRIPT)
    assert "synth_ice40 -noflatten -dsp -top kwshw" in text
    assert "write_json" not in text
    assert text.rstrip().endswith("stat -json")
    assert "read_rtlil kwshw.il" in text and "proc" in text


def test_script_indented_as_the_ecp5_platform_writes_it():
    text = breakdown_script("read_rtlil kwshw.il\n    synth_ecp5  -top kwshw\n"
                            "write_json kwshw.json\n")
    assert "synth_ecp5 -noflatten  -top kwshw" in text and "write_json" not in text


def test_script_without_synthesis_is_refused():
    with pytest.raises(ValueError, match="synth_"):
        breakdown_script("read_rtlil x.il\n")


def test_totals_include_submodules_and_instances():
    stat = {"modules": {
        "\\top": {"num_cells_by_type": {"SB_LUT4": 3, "\\top.a": 1, "\\top.b": 1}},
        "\\top.a": {"num_cells_by_type": {"SB_LUT4": 10, "SB_DFFE": 4, "SB_DFF": 2,
                                          "\\top.a.c": 2}},
        "\\top.a.c": {"num_cells_by_type": {"SB_CARRY": 5, "SB_RAM40_4K": 1}},
        "\\top.b": {"num_cells_by_type": {"SB_MAC16": 1}},
        "\\other": {"num_cells_by_type": {"SB_LUT4": 99}},
    }}
    rows = {r.path: r.cells for r in module_totals(stat, "ice40", "top")}
    assert set(rows) == {"", "a", "a.c", "b"}
    assert rows["a.c"] == {"carry": 5, "bram": 1}
    assert rows["a"] == {"lut4": 10, "ff": 6, "carry": 10, "bram": 2}
    assert rows[""] == {"lut4": 13, "ff": 6, "carry": 10, "bram": 2, "dsp": 1}


def test_format_indents_and_hides_empty_rows():
    rows = [{"module": "(top)", "lut4": 1200}, {"module": "core", "lut4": 1000, "ff": 20},
            {"module": "core.mac", "lut4": 700}, {"module": "io", "lut4": 0}]
    text = format_breakdown(rows, family="ice40").splitlines()
    assert text[0].split()[:3] == ["module", "lut4", "carry"]
    assert text[1].startswith("(top)") and "1,200" in text[1]
    assert text[2].startswith("  core") and text[3].startswith("    mac")
    assert len(text) == 4  # "io" is empty


class _Counter(wiring.Component):
    count: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.count.eq(self.count + 1)
        return m


class _Top(wiring.Component):
    a: In(8)
    y: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.counter = counter = _Counter()
        r = Signal(8)
        m.d.sync += r.eq(self.a ^ counter.count)
        m.d.comb += self.y.eq(r)
        return m


def test_real_yosys_run(tmp_path):
    top = _Top()
    (tmp_path / "top.il").write_text(rtlil.convert(top, name="top", ports=[top.a, top.y]))
    script = "read_rtlil top.il\nsynth_ice40 -top top\nwrite_json top.json\n"
    rows = {r.path: r.cells for r in breakdown(tmp_path, "ice40", tool_env(), top="top",
                                               script=script)}
    assert set(rows) == {"", "counter"}
    # The counter's 8 flip-flops and its adder stay in its own module; the top adds its
    # register of 8 and the XOR LUTs.
    assert rows["counter"]["ff"] == 8 and rows["counter"]["lut4"] >= 1
    assert rows[""]["ff"] == 16
    assert rows[""]["lut4"] >= rows["counter"]["lut4"] + 8
    assert (tmp_path / "breakdown.log").exists()
