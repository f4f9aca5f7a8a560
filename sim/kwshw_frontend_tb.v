// Testbench of the gateware front end (sim/frontend_check.py): plays int16 PCM samples from
// a file into the `pcm` stream as fast as the front end takes them and writes every `feat`
// beat to a file, so that the simulator runs free and Python compares the frames afterwards.
// The same file drives the RTL (Verilator or Icarus) and the Yosys netlist (Icarus, with the
// family's cell models): only the module `frontend` changes.
//
// Plusargs: +samples=<file> (one sample per line, 4 hex digits, two's complement),
// +out=<file> (written: one signed code per line), +values=<n> (codes expected: the run ends
// when they are out), +max_cycles=<n> (ends the run if they never come).
`timescale 1ns / 1ps
module kwshw_frontend_tb;
    reg clk = 1'b0;
    always #5 clk = ~clk;
    reg rst = 1'b1;

    reg         pcm_valid = 1'b0;
    reg  [15:0] pcm_payload = 16'd0;
    wire        pcm_ready;
    wire        feat_valid;
    wire [15:0] feat_payload;

    frontend dut (
        .clk(clk),
        .rst(rst),
        .pcm__valid(pcm_valid),
        .pcm__ready(pcm_ready),
        .pcm__payload(pcm_payload),
        .feat__valid(feat_valid),
        .feat__ready(1'b1),
        .feat__payload(feat_payload),
        .clear(1'b0),
        .busy(),
        .phase()
    );

    reg [1023:0] samples_path, out_path;
    integer fin, fout, values, max_cycles;
    integer written = 0, cycles = 0, r;
    reg [15:0] next;

    // The next sample on the stream, or none at the end of the file.
    task fetch;
        begin
            r = $fscanf(fin, "%h\n", next);
            pcm_valid <= (r == 1);
            pcm_payload <= next;
        end
    endtask

    initial begin
        if (!$value$plusargs("samples=%s", samples_path) || !$value$plusargs("out=%s", out_path)
                || !$value$plusargs("values=%d", values)
                || !$value$plusargs("max_cycles=%d", max_cycles)) begin
            $display("kwshw_frontend_tb: needs +samples= +out= +values= +max_cycles=");
            $finish;
        end
        fin = $fopen(samples_path, "r");
        fout = $fopen(out_path, "w");
        // Out of reset and the first sample between two rising edges: no race with the DUT.
        repeat (4) @(posedge clk);
        @(negedge clk);
        rst = 1'b0;
        fetch;
    end

    always @(posedge clk) if (!rst) begin
        cycles <= cycles + 1;
        if (pcm_valid && pcm_ready)
            fetch;
        if (feat_valid) begin
            $fwrite(fout, "%0d\n", $signed(feat_payload));
            written = written + 1;
        end
        if (written >= values || cycles >= max_cycles) begin
            $fwrite(fout, "cycles %0d\n", cycles);
            $fclose(fout);
            $finish;
        end
    end
endmodule
