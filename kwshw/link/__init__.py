"""The host link, in one place for the gateware, the host and the flash boot path.

- :mod:`kwshw.link.protocol`: the wire format (packets, CRC-16/CCITT-FALSE, sequence
  numbers), the host end (:class:`~kwshw.link.protocol.Link`) and the behavioural model of the
  device end (:class:`~kwshw.link.protocol.DeviceModel`); docs/host-link.md.
- :mod:`kwshw.link.uart`: the UART receiver and transmitter gateware.
- :mod:`kwshw.link.gateware`: the device end in gateware (:class:`~kwshw.link.gateware.HostLink`
  over a byte stream, in three stages: receiver, frame buffer, transmitter;
  :class:`~kwshw.link.gateware.UARTHostLink` with the UART), tested byte for byte against the
  model.

The accelerator's datapath (:mod:`kwshw.hw`) does not depend on any of it; the link takes the
accelerator's port contract from :mod:`kwshw.hw.ports`.
"""
