// Top level of the standalone simulation (sim/standalone.py, sim/tb_standalone.py): the
// board core, wrapped in its probe (sim.standalone.StandaloneProbe), and a microphone that
// plays a precomputed bit stream from a file in step with the core's own microphone clock,
// so that the simulator runs free and Python only sees the low-rate streams.
//
// The file (its name is put on `bits_path` by the testbench, ASCII, right-aligned, before
// the first clock edge) holds the number of bits as a 32-bit little-endian word, then the
// bits, 8 per byte, first bit in the LSB. Bit 0 is on the data pin from reset; the probe's
// `mic_tick` (one cycle after the microphone clock returns to its level at reset: the rising
// edge of a PDM clock, the falling edge of an I2S SCK) moves on to the next bit, i.e. the
// microphone answers the clock edge one system cycle late, as a real one does with its output
// delay. After the last bit the pin keeps it and `audio_done` is set.
//
// The Verilator build leaves out the runner's --public-flat-rw (every signal writable through
// VPI makes it evaluate all combinational logic at every clock edge, ten times slower); the
// signals the testbench uses are public here.
module kwshw_standalone_tb (
    input  wire [2047:0] bits_path    /*verilator public_flat_rw*/,
    output reg           audio_done   /*verilator public_flat_rd*/,
    output reg  [31:0]   bits_played  /*verilator public_flat_rd*/,
    output wire          tx           /*verilator public_flat_rd*/,
    output wire          overrun      /*verilator public_flat_rd*/,
    output wire          feat_fire    /*verilator public_flat_rd*/,
    output wire [15:0]   feat         /*verilator public_flat_rd*/,
    output wire          score_fire   /*verilator public_flat_rd*/,
    output wire [15:0]   score        /*verilator public_flat_rd*/,
    output wire          event_fire   /*verilator public_flat_rd*/,
    output wire [15:0]   event_cls    /*verilator public_flat_rd*/,
    output wire [31:0]   event_frame  /*verilator public_flat_rd*/,
    output wire [39:0]   event_sum    /*verilator public_flat_rd*/
);
    wire mic_tick;
    reg  mic_data;

    // The clock, here rather than in the testbench so that the simulator runs on its own
    // between the events the testbench waits for: 10 ns, rising edge k at (k + 1/2) 10 ns
    // (sim.streams.Clocking).
    reg clk /*verilator public_flat_rd*/ = 1'b0;
    always #5 clk = ~clk;

    // Power-on reset for the first cycles, generated here rather than by the testbench so
    // that the only input that changes is the clock.
    reg [2:0] por = 3'd4;
    wire rst = por != 3'd0;
    always @(posedge clk)
        if (rst)
            por <= por - 3'd1;

    kwshw_standalone_probe probe (
        .clk(clk),
        .rst(rst),
        .mic_tick(mic_tick),
        .mic_data(mic_data),
        .tx(tx),
        .overrun(overrun),
        .feat_fire(feat_fire),
        .feat(feat),
        .score_fire(score_fire),
        .score(score),
        .event_fire(event_fire),
        .event_cls(event_cls),
        .event_frame(event_frame),
        .event_sum(event_sum)
    );

    integer fd = 0;
    integer c;
    reg [31:0] n_bits;
    reg [7:0]  cur;

    task next_byte;
        begin
            c = $fgetc(fd);
            if (c < 0) begin
                $display("kwshw_standalone_tb: %0s ends before its %0d bits", bits_path, n_bits);
                $finish;
            end
            cur = c[7:0];
        end
    endtask

    always @(posedge clk) begin
        if (fd == 0) begin
            fd = $fopen(bits_path, "rb");
            if (fd == 0) begin
                $display("kwshw_standalone_tb: cannot open %0s", bits_path);
                $finish;
            end
            next_byte; n_bits[7:0] = cur;
            next_byte; n_bits[15:8] = cur;
            next_byte; n_bits[23:16] = cur;
            next_byte; n_bits[31:24] = cur;
            next_byte;
            mic_data <= cur[0];
            bits_played <= 0;
            audio_done <= (n_bits <= 1);
        end else if (!rst && mic_tick && !audio_done) begin
            // bits_played is the index of the bit on the pin; the next one is bits_played + 1.
            if (bits_played[2:0] == 3'd7)
                next_byte;
            mic_data <= cur[bits_played[2:0] + 3'd1];
            bits_played <= bits_played + 1;
            audio_done <= (bits_played + 2 >= n_bits);
        end
    end
endmodule
