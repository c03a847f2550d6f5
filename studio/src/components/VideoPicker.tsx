// Pick one finished video from the library (for extend): posters as radio options.
import { useEffect, useState } from "preact/hooks";
import { kinema } from "../api/client";
import type { TaskView } from "../api/views";
import { t } from "../i18n";
import { libraryStamp, upsert } from "../state/tasks";

const PAGE = 12;
const VIDEO_KINDS = ["text2video", "image2video", "extend"] as const;

export function VideoPicker(props: {
  value: string | null;
  onChange: (id: string) => void;
  errorId?: string;
}) {
  const { value, onChange, errorId } = props;
  const [videos, setVideos] = useState<TaskView[]>([]);
  const [total, setTotal] = useState(0);
  const [loading, setLoading] = useState(true);
  const load = async (offset: number) => {
    setLoading(true);
    try {
      const page = await kinema.list({ status: ["succeed"], kind: [...VIDEO_KINDS], offset, limit: PAGE });
      page.tasks.forEach(upsert);
      setVideos((old) => (offset ? [...old, ...page.tasks] : page.tasks));
      setTotal(page.total);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => void load(0).catch(() => undefined), [libraryStamp.value]);
  const options = videos.flatMap((task) => task.outputs.map((output) => ({ task, output })));
  return (
    <fieldset class="video-picker" id="f-video_id" aria-describedby={errorId}>
      <legend>{t("create.pickVideo")}</legend>
      {!loading && !options.length && <p class="muted">{t("create.pickVideoEmpty")}</p>}
      <div class="video-options">
        {options.map(({ task, output }) => (
          <label key={output.id} class={`video-option${value === output.id ? " is-selected" : ""}`}>
            <input
              type="radio"
              name="video_id"
              value={output.id}
              checked={value === output.id}
              onChange={() => onChange(output.id)}
            />
            {output.poster_url && <img src={output.poster_url} alt="" loading="lazy" />}
            <span class="video-caption">
              <span class="clamp">{String(task.params.prompt ?? "")}</span>
              <span class="muted">{t("common.seconds", { value: output.duration ?? 0 })}</span>
            </span>
          </label>
        ))}
      </div>
      {videos.length < total && (
        <button
          type="button"
          class="button ghost"
          disabled={loading}
          onClick={() => void load(videos.length)}
        >
          {t("create.pickVideoMore")}
        </button>
      )}
    </fieldset>
  );
}
