import cliProgress from 'cli-progress';

/**
 * A progress bar on a stream (stderr) with cli-progress's ETA. When the stream is not a terminal (output
 * sent to a file), it prints the bar as a line every notTtyScheduleMs instead of redrawing it.
 */
export function progressBar(stream: NodeJS.WritableStream, format: string, notTtyScheduleMs = 10_000): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    { format, noTTYOutput: true, notTTYSchedule: notTtyScheduleMs, stream, hideCursor: true, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
}
