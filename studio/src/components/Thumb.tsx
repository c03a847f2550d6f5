// A result in a grid: the poster, playing the video while hovered or focused.
import { useState } from "preact/hooks";
import type { Output } from "../api/views";
import { t } from "../i18n";

export function Thumb({ output, link, label }: { output: Output; link: string; label: string }) {
  const [playing, setPlaying] = useState(false);
  const still = output.type === "video" ? output.poster_url : output.url;
  return (
    <a
      class="thumb"
      href={link}
      aria-label={label}
      onMouseEnter={() => setPlaying(true)}
      onMouseLeave={() => setPlaying(false)}
      onFocus={() => setPlaying(true)}
      onBlur={() => setPlaying(false)}
      style={{ aspectRatio: `${output.width} / ${output.height}` }}
    >
      {still && <img src={still} alt="" loading="lazy" />}
      {playing && output.type === "video" && output.url && (
        <video src={output.url} muted loop autoplay playsInline aria-hidden="true" />
      )}
      {output.type === "video" && output.duration !== undefined && (
        <span class="thumb-badge">{t("common.seconds", { value: output.duration })}</span>
      )}
    </a>
  );
}
